"""The edge of the session layer: runs one V2G connection through SupportedAppProtocol and a
protocol session core, carrying out the core's actions on the charger."""

from secc.session.driver import SessionSettings, SessionSummary, run_v2g_session

__all__ = ["SessionSettings", "SessionSummary", "run_v2g_session"]
