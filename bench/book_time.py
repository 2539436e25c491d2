"""Wall time of the whole book per profile, from the record ``python3 tasks.py time`` keeps.

``chapters/appendix/execution_times.json`` holds one time per notebook and profile: the
``standard`` times from the stored outputs' cell timestamps, the ``smoke`` times from a fresh
run under nbval. Summing them gives the book's wall time on the machine that recorded them
(also in the file); re-running the whole book is what ``tasks.py`` is for, not a benchmark.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common import fmt_seconds, table

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT / "chapters" / "appendix" / "execution_times.json"


def recorded() -> dict:
    return json.loads(TIMES.read_text())


def _committed(path: Path) -> str:
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "not committed"


def report() -> None:
    if not TIMES.exists():
        print(f"{TIMES.relative_to(ROOT)} is missing: run `python3 tasks.py time` to record it")
        return
    record = recorded()
    machine = record.get("machine", {})
    print(f"source: {TIMES.relative_to(ROOT)} (written by `python3 tasks.py time`, last committed "
          f"{_committed(TIMES)}), recorded on {machine.get('cpus', '?')} CPUs, {machine.get('machine', '?')}, "
          f"Python {machine.get('python', '?')}")
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    rows = []
    for profile in ("smoke", "standard", "full"):
        times = record.get(profile)
        if not times:
            continue
        slowest = sorted(times.items(), key=lambda kv: -kv[1])[:3]
        missing = [n for n in notebooks if n not in times]
        rows.append([profile, len(times), fmt_seconds(sum(times.values())),
                     ", ".join(f"{Path(n).stem} {fmt_seconds(s)}" for n, s in slowest),
                     f"{len(missing)}: {', '.join(Path(n).stem for n in missing)}" if missing else "0"])
    print(table(["profile", "notebooks", "whole book", "slowest three", "notebooks without a time"], rows))
