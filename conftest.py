"""Repository-wide pytest settings.

With ``MMLEARN_RECORD_TIMES=1`` (set by ``python3 tasks.py time``), the wall time of every
notebook that nbval ran without a failure is written to the book's execution page data,
``chapters/appendix/execution_times.json``, under the active profile.
"""

import collections
import json
import os
import platform
from pathlib import Path

TIMES = Path(__file__).parent / "chapters" / "appendix" / "execution_times.json"
_seconds = collections.defaultdict(float)
_failed = set()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _seconds[path] += report.duration
    if report.failed:
        _failed.add(path)


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
