#!/usr/bin/env python3
"""Set up the book's environment and build, test or re-execute it. Standard library only.

    python3 tasks.py book              set up, then build the HTML book into _build/html/
    python3 tasks.py test [ARGS]       set up, then run the notebooks (nbval) and tests/
    python3 tasks.py execute [NB...]   set up, then re-run notebooks in place to refresh
                                       their stored outputs (default: all of chapters/)

Set-up creates ./.venv with Python 3.11 and installs the pinned packages of pyproject.toml
into it; it is skipped when pyproject.toml has not changed since the last install, so every
command is safe to re-run.
"""

from __future__ import annotations

import hashlib
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


def test(*args: str) -> None:
    """Execute every notebook under nbval and run the package's tests."""
    setup()
    run(PYTHON, "-m", "pytest", "--nbval", "--current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT_S}", *(args or ("chapters/", "tests/")))


def execute(*notebooks: str) -> None:
    """Re-run notebooks in place so their stored outputs are fresh (standard profile)."""
    setup()
    paths = notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").rglob("*.ipynb")
                                if ".ipynb_checkpoints" not in p.parts)
    for path in paths:
        run(BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
            f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}", path,
            MMLEARN_PROFILE=os.environ.get("MMLEARN_PROFILE", "standard"))


COMMANDS = {"book": book, "test": test, "execute": execute}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
