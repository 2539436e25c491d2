#!/usr/bin/env python3
"""Set up the book's environment and build, test or re-execute it. Standard library only.

    python3 tasks.py book              set up, then build the HTML book into _build/html/
    python3 tasks.py test [ARGS]       set up, then run the notebooks (nbval, smoke profile
                                       unless MMLEARN_PROFILE is set) and tests/
    python3 tasks.py execute [NB...]   set up, then re-run notebooks in place to refresh
                                       their stored outputs (default: all of chapters/)
    python3 tasks.py time [NB...]      set up, then record each notebook's run time for the
                                       book's execution page: standard from the timestamps
                                       stored with its outputs, smoke by running it under nbval

Set-up creates ./.venv with Python 3.11 and installs the pinned packages of pyproject.toml
into it; it is skipped when pyproject.toml has not changed since the last install, so every
command is safe to re-run.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".mmlearn-installed"
TIMES = ROOT / "chapters" / "appendix" / "execution_times.json"
CELL_TIMEOUT_S = os.environ.get("NBVAL_CELL_TIMEOUT", "900")


def run(*args: str | Path, **env: str) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup() -> None:
    """Create .venv and install the pinned packages, unless that is already done."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"The book is pinned to Python 3.11; this is Python {sys.version.split()[0]}. "
                 "Run this script with a Python 3.11 interpreter, e.g. `python3.11 tasks.py ...`.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
        "--editable", ".[book,test]")
    STAMP.write_text(wanted + "\n")


def book(*_args: str) -> None:
    """Build the HTML book from the notebooks' stored outputs (nothing is re-executed)."""
    setup()
    run(BIN / "jupyter-book", "build", ".", "--warningiserror", "--nitpick", "--keep-going")
    print(f"The book is at {ROOT / '_build' / 'html' / 'index.html'}")


def test(*args: str, **env: str) -> None:
    """Execute every notebook under nbval and run the package's tests.

    Runs the smoke profile unless MMLEARN_PROFILE says otherwise: the test checks that every
    cell runs and that what it shows still matches, not the full-size results.
    """
    setup()
    env.setdefault("MMLEARN_PROFILE", os.environ.get("MMLEARN_PROFILE", "smoke"))
    run(PYTHON, "-m", "pytest", "--nbval", "--nbval-current-env", f"--nbval-cell-timeout={CELL_TIMEOUT_S}",
        "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", *(args or ("chapters/", "tests/")), **env)


def notebook_paths(notebooks) -> list[str]:
    return list(notebooks) or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").rglob("*.ipynb")
                                     if ".ipynb_checkpoints" not in p.parts)


def execute(*notebooks: str) -> None:
    """Re-run notebooks in place so their stored outputs are fresh (standard profile)."""
    setup()
    for path in notebook_paths(notebooks):
        run(BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
            f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}", path,
            MMLEARN_PROFILE=os.environ.get("MMLEARN_PROFILE", "standard"))


def run_seconds(notebook: Path) -> float:
    """Wall time of an executed notebook, from the timestamps the executor stores per cell."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    stamps = [c["metadata"]["execution"] for c in cells if "execution" in c.get("metadata", {})]
    start = datetime.datetime.fromisoformat(stamps[0]["iopub.status.busy"])
    end = datetime.datetime.fromisoformat(stamps[-1]["iopub.status.idle"])
    return (end - start).total_seconds()


def time_notebooks(*notebooks: str) -> None:
    """Record run times: the standard run's from the stored outputs, the smoke run's by running
    the notebooks under nbval (which also checks them); see conftest.py."""
    setup()
    record = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    record.setdefault("standard", {}).update(
        {path: round(run_seconds(ROOT / path), 1) for path in notebook_paths(notebooks)})
    TIMES.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    test(*notebook_paths(notebooks), MMLEARN_PROFILE="smoke", MMLEARN_RECORD_TIMES="1")
    print(f"Run times written to {TIMES.relative_to(ROOT)}")


COMMANDS = {"book": book, "test": test, "execute": execute, "time": time_notebooks}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
