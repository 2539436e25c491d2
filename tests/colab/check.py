#!/usr/bin/env python3
"""The book in a Colab-like runtime: Python 3.13 with Colab's own versions of torch, TensorFlow,
transformers, numpy and the rest (tests/colab/colab-versions.txt). Standard library only.

    python3 tests/colab/check.py [--python PATH] [NOTEBOOK ...]

1. Creates .venv-colab/ with Python 3.13 (``--python``, else pyenv's 3.13.*, else python3.13 on
   PATH) and installs colab-versions.txt into it, plus the test tools (pytest, nbval at the
   versions of constraints.txt). The environment is kept for the next run while
   colab-versions.txt is unchanged; whatever a previous run's cell added is uninstalled first.
2. Records Colab's packages (``pip freeze``), then runs a notebook's first code cell in IPython
   twice: once as on any other machine (it must install nothing), once with a stand-in
   ``google.colab`` module imported, as Colab's kernel has it, and the cell's git URL replaced by
   a copy of this checkout, so that the cell's own pip command installs mmlearn.
3. Fails if that install changed the version of any of Colab's packages other than the data
   packages pyproject.toml pins exactly, or if mmlearn does not import from where it went.
4. Runs notebooks of each Part and the appendix under ``pytest --nbval`` in that environment,
   smoke profile, one thread (NOTEBOOK arguments replace the default list).

Prints the versions used and the wall time of each step; exits non-zero with the reason on
failure. The environment takes about 7.7 GB (a 3.4 GB download: PyPI's torch for Linux is the
CUDA build and brings its CUDA libraries, which Colab's CPU runtime lacks; without them it does
not import). A first run takes about 6 minutes on a busy 2-core machine, a later one about 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VERSIONS = HERE / "colab-versions.txt"
VENV = ROOT / ".venv-colab"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".colab-installed"       # hash of what was installed, written after success
BASE_FREEZE = VENV / "colab-freeze.txt"  # Colab's packages as installed, before any cell ran
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
# a notebook of each Part and the appendix, plus the two that check torch's and TensorFlow's
# operators numerically (about a minute in all under the smoke profile)
NOTEBOOKS = (
    "chapters/part1/01_background.ipynb",
    "chapters/part1/03_math.ipynb",
    "chapters/part2/01_background.ipynb",
    "chapters/part2/02_concepts.ipynb",
    "chapters/part2/03_algorithms.ipynb",
    "chapters/appendix/data.ipynb",
    "chapters/appendix/glossary.ipynb",
)
TEST_TOOLS = ("pytest", "nbval")  # not Colab's: installed at the lock's versions
# Colab's packages whose version the install must leave alone (printed; any other change of a
# Colab package fails too, except a data package pinned exactly in pyproject.toml).
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "transformers", "tokenizers",
              "safetensors", "huggingface-hub", "sentence-transformers", "numpy", "scipy", "pandas",
              "matplotlib", "scikit-learn", "pillow", "numba", "pydantic", "ipykernel", "ipython")
PIP = ("-m", "pip", "--disable-pip-version-check")
STEPS: list[tuple[str, float]] = []


class Failure(Exception):
    """A check failed: the message says what and why."""


def say(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def step(name: str):
    """``with step("..."):`` prints the step's name and records its wall time for the summary."""
    say(f"\n=== {name}")
    start = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - start
        STEPS.append((name, seconds))
        say(f"--- {name}: {seconds:.0f} s")


def run(*args: str | Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    say("+ " + " ".join(str(a) if "\n" not in str(a) else "'...'" for a in args))
    result = subprocess.run([str(a) for a in args], **kwargs)
    if check and result.returncode != 0:
        detail = ""
        if kwargs.get("capture_output"):
            detail = "\n" + (result.stdout or "")[-3000:] + (result.stderr or "")[-3000:]
        raise Failure(f"command failed (exit {result.returncode}): {' '.join(str(a) for a in args)}{detail}")
    return result


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """NAME==VERSION lines (comments, blank lines and anything else skipped) by canonical name."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and " @ " not in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


# --- 1. the environment ------------------------------------------------------------------------

def find_python(explicit: str | None) -> Path:
    if explicit:
        candidates = [Path(explicit)]
    else:
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        candidates = sorted(pyenv.glob("3.13.*/bin/python3.13"), reverse=True)
        candidates += [Path(p) for p in [shutil.which("python3.13")] if p]
    for python in candidates:
        if not python.is_file():
            if explicit:
                raise Failure(f"--python {explicit}: no such file")
            continue
        probe = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.split() == ["3", "13"]:
            return python
        if explicit:
            found = "Python " + ".".join(probe.stdout.split()) if probe.returncode == 0 else (
                probe.stderr.strip()[-300:] or f"exit {probe.returncode}")
            raise Failure(f"--python {explicit} is not a working Python 3.13 ({found})")
    raise Failure("no Python 3.13 found (Colab's runtime is Python 3.13): looked for "
                  "$PYENV_ROOT/versions/3.13.*/bin/python3.13 (default ~/.pyenv) and python3.13 on PATH. "
                  "Install one (e.g. `pyenv install 3.13`) or pass --python PATH.")


def test_tool_pins() -> list[str]:
    lock = read_pins((ROOT / "constraints.txt").read_text())
    return [f"{name}=={lock[name]}" if name in lock else name for name in TEST_TOOLS]


def wanted_stamp(python: Path) -> str:
    digest = hashlib.sha256(VERSIONS.read_bytes())
    digest.update(" ".join(test_tool_pins()).encode())
    digest.update(str(python.resolve()).encode())
    return digest.hexdigest()


def freeze() -> dict[str, str]:
    out = run(PYTHON, *PIP, "freeze", "--all", capture_output=True, text=True).stdout
    return read_pins(out) | {canonical(line.split(" @ ")[0]): line.split(" @ ", 1)[1]
                             for line in out.splitlines() if " @ " in line}


def prepare_environment(python: Path) -> dict[str, str]:
    """.venv-colab with Colab's packages and nothing else; returns its freeze."""
    stamp = wanted_stamp(python)
    if STAMP.exists() and STAMP.read_text().strip() == stamp and BASE_FREEZE.exists():
        base = read_pins(BASE_FREEZE.read_text())
        now = freeze()
        added = sorted(set(now) - set(base))
        moved = sorted(name for name in base if now.get(name) != base[name])
        if not added and not moved:
            say(f"Reusing {VENV.name}/ (colab-versions.txt unchanged)")
            return base
        say(f"Reusing {VENV.name}/ (colab-versions.txt unchanged); undoing the last run's cell: "
            + " ".join([f"remove {n}" for n in added] + [f"{n} back to {base[n]}" for n in moved]))
        if added:
            run(PYTHON, *PIP, "uninstall", "--yes", "--quiet", *added)
        if moved:
            run(PYTHON, *PIP, "install", "--quiet", "--no-deps", *(f"{n}=={base[n]}" for n in moved))
        if freeze() == base:
            return base
        say(f"{VENV.name}/ still differs from the packages it was built with: rebuilding it")
    say(f"Creating {VENV.name}/ with {python} and installing {VERSIONS.name} (PyPI's torch for "
        "Linux brings its CUDA libraries: a few GB) ...")
    if VENV.exists():
        shutil.rmtree(VENV)
    run(python, "-m", "venv", VENV)
    colab = read_pins(VERSIONS.read_text())
    # Colab's own pip first: it is what the first cell runs
    run(PYTHON, *PIP, "install", "--quiet", f"pip=={colab['pip']}")
    run(PYTHON, *PIP, "install", "--progress-bar", "off", "--requirement", VERSIONS, *test_tool_pins())
    base = freeze()
    wrong = {name: (version, base.get(name)) for name, version in colab.items() if base.get(name) != version}
    if wrong:
        raise Failure("the environment does not hold Colab's versions: "
                      + ", ".join(f"{n} {want} wanted, {got} installed" for n, (want, got) in wrong.items()))
    BASE_FREEZE.write_text("".join(f"{name}=={version}\n" for name, version in sorted(base.items())))
    STAMP.write_text(stamp + "\n")
    return base


# --- 2. the first cell ---------------------------------------------------------------------------

HARNESS = r'''
import importlib.util, json, sys
colab = sys.argv[1] == "colab"
if colab:
    import google.colab  # noqa: F401  Colab's kernel has imported it before any cell runs
else:
    assert importlib.util.find_spec("google") is None or importlib.util.find_spec("google.colab") is None
import contextlib, io
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shown = io.StringIO()  # outside Colab the expected traceback is not shown
with contextlib.redirect_stdout(sys.stdout if colab else shown):
    result = shell.run_cell(open(sys.argv[2], encoding="utf-8").read())
error = result.error_before_exec or result.error_in_exec
if colab:
    if error is not None:
        raise SystemExit(f"the first cell failed in Colab: {error!r}")
    import mmlearn
    print(json.dumps({"file": mmlearn.__file__, "version": mmlearn.__version__}))
else:
    # nothing installed it, so the cell's `import mmlearn` must be what fails, and nothing else
    if not (isinstance(error, ModuleNotFoundError) and error.name == "mmlearn"):
        raise SystemExit(f"{shown.getvalue()}\noutside Colab the cell should skip the install and "
                         f"fail only at `import mmlearn` here; it ended with {error!r}")
    print(json.dumps({"installed": importlib.util.find_spec("mmlearn") is not None}))
'''


def first_code_cell(notebook: Path) -> str:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def book_requirement() -> str:
    """The cell's requirement, from _config.yml's repository url and branch (no YAML parser needed)."""
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^\s+url:\s*(\S+)", config, re.M)
    branch = re.search(r"^\s+branch:\s*(\S+)", config, re.M)
    if not (url and branch):
        raise Failure("_config.yml has no repository url and branch")
    return f"mmlearn @ git+{url.group(1)}@{branch.group(1)}"


def source_copy(tmp: Path) -> Path:
    """What `git+URL@main` would fetch: the package and its build files, from this checkout's
    working tree (a copy, so that the build leaves nothing behind in the tree)."""
    source = tmp / "source"
    shutil.copytree(ROOT / "mmlearn", source / "mmlearn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    return source


def run_first_cell(tmp: Path, mode: str, env: dict[str, str]) -> dict:
    run_env = dict(env)
    if mode == "colab":
        run_env["PYTHONPATH"] = str(tmp / "fake_colab")
    result = run(PYTHON, tmp / "harness.py", mode, tmp / "cell.py", cwd=tmp, env=run_env,
                 capture_output=True, text=True, check=False, timeout=1800)
    if result.stdout.strip():
        say(result.stdout.rstrip())
    if result.returncode != 0:
        raise Failure(f"the first cell, {mode} run:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def exact_pins_in_pyproject() -> set[str]:
    probe = run(PYTHON, "-c", "import tomllib, sys, json; deps = tomllib.load(open(sys.argv[1], 'rb'))"
                "['project']['dependencies']; print(json.dumps(deps))", ROOT / "pyproject.toml",
                capture_output=True, text=True)
    return {canonical(re.split(r"[=<>!~ ;\[]", dep, maxsplit=1)[0]) for dep in json.loads(probe.stdout)
            if re.search(r"==", dep)}


def compare(before: dict[str, str], after: dict[str, str], colab: dict[str, str]) -> None:
    changed = {name: (before[name], after.get(name, "removed")) for name in before
               if after.get(name) != before[name]}
    say("Colab's frameworks after the install: " + ", ".join(
        f"{name} {after.get(name, 'missing')}" + (f" (was {before[name]})" if name in changed else "")
        for name in FRAMEWORKS))
    added = sorted(set(after) - set(before))
    say(f"Added by the cell ({len(added)}): " + ", ".join(f"{n} {after[n]}" for n in added))
    data_pins = exact_pins_in_pyproject()
    allowed = {n: v for n, v in changed.items() if n in data_pins}
    for name, (old, new) in allowed.items():
        say(f"note: {name} {old} -> {new}: pyproject.toml pins this data package exactly")
    bad = {n: v for n, v in changed.items() if n not in allowed}
    if bad:
        lines = "\n".join(f"  {n}: {old} -> {new}" + ("  (a framework)" if n in FRAMEWORKS else "")
                          for n, (old, new) in sorted(bad.items()))
        raise Failure("installing mmlearn in Colab replaced Colab's own packages, which would need a "
                      "restart of the runtime and can break what Colab ships with them:\n" + lines +
                      "\nRequirements that exclude Colab's versions:\n" + why_moved(bad) +
                      "\nWiden the range in pyproject.toml (or the pin of the package that asks for "
                      "them) so that Colab's versions satisfy it.")
    missing = [n for n in colab if n not in before]
    if missing:
        raise Failure(f"Colab's packages missing from the environment: {', '.join(missing)}")


WHY = r'''
import json, sys
from importlib.metadata import distributions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
old = json.loads(sys.argv[1])
for dist in distributions():
    for text in dist.requires or ():
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in old and (req.marker is None or req.marker.evaluate({"extra": ""})) \
                and not req.specifier.contains(old[name], prereleases=True):
            print(f"  {dist.metadata['Name']} {dist.version} requires {req} (Colab has {old[name]})")
'''


def why_moved(changed: dict[str, tuple[str, str]]) -> str:
    """Which installed package asks for a version of each changed package that Colab lacks."""
    result = run(PYTHON, "-c", WHY, json.dumps({n: old for n, (old, _) in changed.items()}),
                 capture_output=True, text=True, check=False)
    return result.stdout.rstrip() or f"  (not found: {result.stderr.strip()[-500:]})"


def check_first_cell(base: dict[str, str], env: dict[str, str]) -> None:
    requirement = book_requirement()
    notebook = ROOT / NOTEBOOKS[0]
    cell = first_code_cell(notebook)
    if requirement not in cell:
        raise Failure(f"the first cell of {NOTEBOOKS[0]} does not install {requirement!r}")
    with tempfile.TemporaryDirectory(prefix="mmlearn-colab-") as name:
        tmp = Path(name)
        source = source_copy(tmp)
        (tmp / "cell.py").write_text(cell.replace(requirement, f"mmlearn @ {source.as_uri()}"), encoding="utf-8")
        (tmp / "harness.py").write_text(HARNESS, encoding="utf-8")
        marker = tmp / "fake_colab" / "google" / "colab"
        marker.mkdir(parents=True)
        (marker / "__init__.py").write_text('"""Stands in for Colab\'s google.colab package."""\n')

        with step("first cell outside Colab: installs nothing"):
            out = run_first_cell(tmp, "local", env)
            if out != {"installed": False} or freeze() != base:
                raise Failure("outside Colab the first cell changed the environment")
            say("ok: nothing installed, mmlearn not importable")

        with step("first cell in Colab: the cell's pip installs mmlearn from this checkout"):
            out = run_first_cell(tmp, "colab", env)
            site = Path(run(PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                            capture_output=True, text=True).stdout.strip())
            if not Path(out["file"]).is_relative_to(site):
                raise Failure(f"mmlearn imported from {out['file']}, not from {site}")
            say(f"ok: mmlearn {out['version']} imports from {Path(out['file']).parent}")

        with step("Colab's packages kept"):
            compare(base, freeze(), read_pins(VERSIONS.read_text()))


# --- 3. the notebooks ------------------------------------------------------------------------------

def run_notebooks(notebooks: list[str], env: dict[str, str]) -> None:
    with step(f"nbval, smoke profile: {len(notebooks)} notebooks"):
        result = run(PYTHON, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-cell-timeout=600",
                     "--nbval-sanitize-with", SANITIZE, *notebooks,
                     cwd=ROOT, check=False, env={**env, "MMLEARN_PROFILE": "smoke", "MMLEARN_THREADS": "1",
                                                  "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
        if result.returncode != 0:
            raise Failure(f"nbval failed in the Colab-like environment (exit {result.returncode}): see above")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="the Python 3.13 to build .venv-colab/ with")
    parser.add_argument("notebooks", nargs="*", help=f"notebooks to run (default: {' '.join(NOTEBOOKS)})")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        notebooks = args.notebooks or list(NOTEBOOKS)
        for nb in notebooks:
            if not (ROOT / nb).exists():
                raise Failure(f"no notebook or folder {nb}")
        python = find_python(args.python)
        with step(f"environment: {VENV.name}/ with {python}"):
            base = prepare_environment(python)
        colab = read_pins(VERSIONS.read_text())
        say("Python " + run(PYTHON, "-c", "import platform; print(platform.python_version())",
                            capture_output=True, text=True).stdout.strip() + "; Colab's versions: "
            + ", ".join(f"{n} {base.get(n)}" for n in FRAMEWORKS if n in colab))
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env |= {"PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(VENV),
                "MMLEARN_CACHE": str(VENV / "mmlearn-cache")}
        check_first_cell(base, env)
        run_notebooks(notebooks, env)
    except Failure as failure:
        say(f"\nFAILED: {failure}")
        summary(started)
        return 1
    summary(started)
    say("OK: the first cell installs mmlearn into Colab's runtime without replacing Colab's packages, "
        f"and {len(notebooks)} notebooks pass there")
    return 0


def summary(started: float) -> None:
    say("\nwall time per step:")
    for name, seconds in STEPS:
        say(f"  {seconds:7.0f} s  {name}")
    say(f"  {time.monotonic() - started:7.0f} s  in all")


if __name__ == "__main__":
    sys.exit(main())
