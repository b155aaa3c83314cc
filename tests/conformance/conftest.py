"""Conformance suite plumbing: one daemon per protocol module, the per-case runner, and the
table by area printed at the end (``make conformance``; ``--conformance-table``).

Long-timer cases (60 s sequence timeouts, CommunicationSetup) carry the ``conformance_long``
marker: ``make test`` deselects them, ``make conformance`` runs everything.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

CATALOGUE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "CATALOGUE.md"
RESULTS: list[dict] = []


def pytest_addoption(parser):
    parser.addoption("--conformance-table", action="store_true",
                     help="print the conformance table by area at the end")


def record(case, protocol: str, outcome: str, reason: str = "") -> None:
    RESULTS.append({"id": case.id, "area": case.area, "protocol": protocol,
                    "outcome": outcome, "reason": reason})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    case = getattr(item, "conformance_case", None)
    if case is None or report.when not in ("setup", "call"):
        return
    if report.when == "setup" and report.passed:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record(case, item.conformance_protocol, "n/a", reason.removeprefix("Skipped: "))
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        record(case, item.conformance_protocol, "fail",
               message.splitlines()[0][:200] if message else "")
    elif report.when == "call":
        record(case, item.conformance_protocol, "pass")


def catalogue_ids() -> dict[str, str]:
    """Every case id of the catalogue's Appendix A with its section (area)."""
    if not CATALOGUE.exists():
        return {}
    ids: dict[str, str] = {}
    section = ""
    for line in CATALOGUE.read_text().split("## Appendix A", 1)[-1].splitlines():
        m = re.match(r"\*\*§(\d+\.\d+) ([^*]+)\*\*", line)
        if m:
            section = f"{m.group(1)} {m.group(2).strip()}"
        for case_id in re.findall(r"`(TC_SECC_[A-Za-z0-9_]+)`", line):
            ids.setdefault(case_id, section)
    return ids


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("--conformance-table", default=False) or not RESULTS:
        return
    from tests.conformance.cases import BY_ID, UNCOVERED_AREAS

    tr = terminalreporter
    by_area: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in RESULTS:
        by_area[r["area"]][r["outcome"]] += 1
    catalogue = catalogue_ids()
    run_ids = {r["id"] for r in RESULTS}
    missing: dict[str, list[str]] = collections.defaultdict(list)
    for case_id, section in catalogue.items():
        if case_id not in BY_ID and case_id not in run_ids:
            missing[section].append(case_id)
    tr.section("conformance table (case x protocol)")
    tr.write_line(f"{'area':48} {'pass':>5} {'fail':>5} {'n/a':>5}")
    totals: collections.Counter = collections.Counter()
    for area in sorted(by_area, key=_area_key):
        c = by_area[area]
        totals.update(c)
        tr.write_line(f"{area:48} {c['pass']:>5} {c['fail']:>5} {c['n/a']:>5}")
    for section, ids in sorted(missing.items(), key=lambda kv: _area_key(kv[0])):
        reason = next((why for area, why in UNCOVERED_AREAS.items()
                       if section.startswith(area.split()[0])), "no row in the case table yet")
        totals["n/a"] += len(ids)
        tr.write_line(f"{section + ' (not in the suite)':48} {0:>5} {0:>5} {len(ids):>5}"
                      f"  {reason[:70]}")
    tr.write_line(f"{'total':48} {totals['pass']:>5} {totals['fail']:>5} {totals['n/a']:>5}")
    fails = [r for r in RESULTS if r["outcome"] == "fail"]
    if fails:
        tr.write_line("")
        tr.write_line("failing cases:")
        for r in fails:
            tr.write_line(f"  {r['id']} [{r['protocol']}]: {r['reason']}")
    reasons = collections.Counter(r["reason"] for r in RESULTS if r["outcome"] == "n/a")
    if reasons:
        tr.write_line("")
        tr.write_line("not applicable, by reason:")
        for reason, n in reasons.most_common():
            tr.write_line(f"  {n:4} x {reason}")


def _area_key(area: str) -> tuple:
    m = re.match(r"(\d+)\.(\d+)", area)
    return (int(m.group(1)), int(m.group(2))) if m else (99, 99)
