"""Repository-wide pytest settings.

With ``MMLEARN_RECORD_TIMES=1`` (set by ``python3 tasks.py time``), the wall time of every
notebook that nbval ran without a failure is written to the book's execution page data,
``chapters/appendix/execution_times.json``, under the active profile.

With ``MMLEARN_DRY_RUN=1`` (set by ``python3 tasks.py dry-run``), every notebook cell is run with
the asserts about the profile's results evaluated but not enforced
(``tests/notebook_claims.py``), and the session ends with each notebook's wall
time, so the dry run's cost stays in view.

Before nbval compares a cell with its stored outputs, the notices of the machine's environment
that ``tests/nbval_sanitize.cfg`` lists under "drop: ..." are removed from both sides.
"""

import collections
import json
import os
import platform
from pathlib import Path

# Progress bars are for readers; the book's own runs keep stored and compared outputs free of them.
os.environ.setdefault("MMLEARN_PROGRESS", "0")

TIMES = Path(__file__).parent / "chapters" / "appendix" / "execution_times.json"
_seconds = collections.defaultdict(float)
_failed = set()


def _drop_environment_notices() -> None:
    """Before nbval compares a cell's outputs with the stored ones, remove from both the stderr
    notices that tests/nbval_sanitize.cfg lists under "drop: ..." (an output left empty goes):
    whether such a notice of the machine reaches a cell at all is a race in the kernel."""
    try:
        from nbval import plugin
    except ImportError:      # nbval not installed: no notebooks to compare
        return
    from tasks import drop_notices

    coalesce = plugin.coalesce_streams

    def coalesce_without_notices(outputs):
        kept = []
        for output in coalesce(outputs) or []:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output.text = drop_notices(output.text)
                if not output.text:
                    continue
            kept.append(output)
        return kept

    plugin.coalesce_streams = coalesce_without_notices


_drop_environment_notices()


def _dry_run() -> bool:
    if os.environ.get("MMLEARN_DRY_RUN", "").strip() in ("", "0"):
        return False  # decided without importing mmlearn, which plain test runs may not need
    import pytest
    from mmlearn.config import dry_run
    try:
        return dry_run()
    except ValueError as error:  # a value that is not a switch: say what to write, no traceback
        raise pytest.UsageError(str(error)) from None


def pytest_collection_modifyitems(session, config, items):
    if not _dry_run():
        return
    from tests.notebook_claims import relax_profile_claims
    profile_names = collections.defaultdict(set)  # per notebook: names its cells set from the profile
    for item in items:  # in each notebook's order
        cell = getattr(item, "cell", None)  # nbval's notebook cells
        if cell is not None and cell.get("cell_type") == "code":
            cell.source = relax_profile_claims(cell.source, profile_names[item.nodeid.split("::")[0]])


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _seconds[path] += report.duration
    if report.failed:
        _failed.add(path)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _seconds or not _dry_run():
        return
    terminalreporter.section("notebook wall times (dry run)")
    for path, seconds in sorted(_seconds.items()):
        mark = "  FAILED" if path in _failed else ""
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}{mark}")
    terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  in all")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("MMLEARN_RECORD_TIMES") != "1" or not _seconds:
        return
    profile = os.environ.get("MMLEARN_PROFILE", "standard")
    record = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    record["machine"] = {"cpus": os.cpu_count(), "machine": platform.machine(),
                         "python": platform.python_version()}
    for path, seconds in _seconds.items():
        if path not in _failed:
            record.setdefault(profile, {})[path] = round(seconds, 1)
    TIMES.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
