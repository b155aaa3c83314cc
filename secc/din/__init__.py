"""DIN SPEC 70121 (DC charging) session: state table, handlers, adapter."""

from secc.din.adapter import DinAdapter
from secc.din.session import DinSession

__all__ = ["DinAdapter", "DinSession"]
