#!/usr/bin/env python3
"""Set up the book's environment and build, test or re-execute it. Standard library only.

    python3 tasks.py book              set up, then build the HTML book into _build/html/
    python3 tasks.py test [ARGS]       set up, then run the notebooks (nbval, smoke profile
                                       unless MMLEARN_PROFILE is set) and tests/
    python3 tasks.py execute [NB...]   set up, then re-run notebooks in place to refresh
                                       their stored outputs (default: all of chapters/)
    python3 tasks.py time [NB...]      set up, then time each notebook for the book's execution
                                       page (standard: a scratch copy executed; smoke: under
                                       nbval) and record how busy the rest of the machine was;
                                       refuses to start on a busy machine unless --loaded;
                                       --store keeps the timed standard run as the stored outputs
    python3 tasks.py standard [NB...]  set up, then run the notebooks under nbval with the standard
                                       profile: the trained results their stored outputs show,
                                       checked by the asserts that the smoke profile cannot check
                                       (default: all of chapters/; a scheduled workflow runs it)
    python3 tasks.py elsewhere         set up, then check the book where its readers run it
                                       (what CI adds to `test`): the numerical notebooks under
                                       another BLAS kernel and thread count, the `full` profile
                                       as a CPU dry run, a Colab-like Python 3.13, and the
                                       lock's resolution on Pythons 3.12 and 3.13, macOS on
                                       Apple Silicon and Windows (each alone: numerics,
                                       dry-run, colab, platforms)
    python3 tasks.py gpu-check         set up (MMLEARN_GPU=1 adds TensorFlow's CUDA libraries),
                                       then fail unless both frameworks see a GPU
    python3 tasks.py lock              resolve pyproject.toml's ranges afresh and write the
                                       exact versions to constraints.txt

Set-up creates ./.venv with the Python that runs this script (3.11 to 3.13) and installs the
package with the exact versions of constraints.txt; it is skipped while pyproject.toml and
constraints.txt are unchanged since the last install, so every command is safe to re-run.
"""

from __future__ import annotations

import configparser
import datetime
import hashlib
import json
import os
import re
import shutil
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
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
CELL_TIMEOUT_S = os.environ.get("NBVAL_CELL_TIMEOUT", "900")


def run(*args: str | Path, **env: str) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    # progress bars are for readers at a prompt, not for stored outputs (MMLEARN_PROGRESS=1 keeps them)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env={"MMLEARN_PROGRESS": "0", **os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))
CONSTRAINTS = ROOT / "constraints.txt"
EXTRAS = ".[book,test]"


def extras() -> str:
    """The package's extras to install: with MMLEARN_GPU=1 also TensorFlow's CUDA libraries (the
    PyPI build of torch for Linux brings its own)."""
    return ".[book,test,gpu]" if os.environ.get("MMLEARN_GPU") == "1" else EXTRAS


def install_inputs_digest() -> str:
    digest = hashlib.sha256(extras().encode())
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def check_python() -> None:
    if sys.version_info[:2] not in SUPPORTED_PYTHONS:
        names = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHONS)
        sys.exit(f"The book runs on Python {names}; this is Python {sys.version.split()[0]}. Run this "
                 "script with one of those, e.g. `python3.11 tasks.py ...`.")


def setup() -> None:
    """Create .venv and install the package with the locked versions, unless that is done."""
    check_python()
    wanted = install_inputs_digest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing the book's packages at the versions of constraints.txt (about 8 GB; a few "
          "minutes on a fast connection, most of it PyTorch and TensorFlow) ...", flush=True)
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
        "--constraint", CONSTRAINTS, "--editable", extras())
    STAMP.write_text(wanted + "\n")


def lock(*_args: str) -> None:
    """Resolve pyproject.toml's ranges in a new environment and write every version to
    constraints.txt. Review the diff, then run `python3 tasks.py test` before committing it."""
    check_python()
    scratch = ROOT / ".venv-lock"
    venv.EnvBuilder(with_pip=True, clear=True).create(scratch)
    python = scratch / BIN.name / "python"
    run(python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", EXTRAS)
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    pins = sorted((line for line in frozen.splitlines() if "==" in line and not line.startswith("mmlearn")),
                  key=str.lower)
    CONSTRAINTS.write_text(
        "# The exact versions that tasks.py, CI, conda and Binder install: the lock of the ranges in\n"
        f"# pyproject.toml, resolved on Python {sys.version_info[0]}.{sys.version_info[1]} by "
        "`python3 tasks.py lock`. Do not edit by hand.\n" + "\n".join(pins) + "\n")
    print(f"Wrote {len(pins)} pins to {CONSTRAINTS.name}; {scratch} can be deleted.")


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
        "--nbval-sanitize-with", SANITIZE, *(args or ("chapters/", "tests/")), **env)


def standard(*notebooks: str) -> None:
    """Run the notebooks under nbval with the standard profile, the one their stored outputs show.

    The smoke profile that `test` runs is too small to reach the trained results the prose
    states, so its asserts of those results only check that they compute; this command checks
    the results themselves, and that a fresh run reproduces the stored outputs.
    """
    test(*(notebooks or ("chapters/",)), MMLEARN_PROFILE="standard")


def notebook_paths(notebooks) -> list[str]:
    return list(notebooks) or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").rglob("*.ipynb")
                                     if ".ipynb_checkpoints" not in p.parts)


def sanitizer_rules(kind: str) -> list[tuple[re.Pattern, str]]:
    """The sanitiser's rules of one kind (tests/nbval_sanitize.cfg): "path" (folders of this
    machine) or "drop" (notices of its environment, removed from stderr outputs)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(SANITIZE)
    return [(re.compile(config[name]["regex"]), config[name]["replace"])
            for name in config.sections() if name.startswith(f"{kind}:")]


def drop_notices(text: str) -> str:
    """``text`` (a stderr output) without the notices of the machine's environment that the
    sanitiser's "drop: ..." rules list; conftest.py applies it before nbval compares a cell."""
    for pattern, _ in sanitizer_rules("drop"):
        text = pattern.sub("", text)
    return text


def scrub_outputs(notebook: Path) -> None:
    """Rewrite the machine's folders in a notebook's stored outputs (tracebacks, warnings) the
    way nbval's sanitiser sees them, so the stored page names no path of the machine that ran it,
    and drop the notices of its environment from stderr (an output left empty goes)."""
    rules = sanitizer_rules("path")

    def without_notices(outputs):
        kept = []
        for output in outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = drop_notices("".join(output["text"]))   # a str, or a list of lines
                if not text:
                    continue
                output = {**output, "text": text}
            kept.append(output)
        return kept

    def clean(value):
        if isinstance(value, str):
            for pattern, replacement in rules:
                value = pattern.sub(replacement, value)
            return value
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: v if k == "image/png" else clean(v) for k, v in value.items()}
        return value

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "outputs" in cell:
            cell["outputs"] = clean(without_notices(cell["outputs"]))
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def execute(*args: str) -> None:
    """Re-run notebooks in place so their stored outputs are fresh (standard profile unless
    MMLEARN_PROFILE says otherwise). ``--into DIR`` writes the executed copies under DIR instead,
    keeping chapters/ as it is (the GPU workflow keeps those of the full profile)."""
    args = list(args)
    into = None
    if "--into" in args:
        at = args.index("--into")
        if at + 1 >= len(args):
            sys.exit("--into needs a folder, e.g. `python3 tasks.py execute --into _build/executed`")
        into = ROOT / args.pop(at + 1)
        args.pop(at)
    setup()
    for path in notebook_paths(args):
        target = ROOT / path if into is None else into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        where = ["--inplace"] if into is None else ["--output", target.name, "--output-dir", target.parent]
        run(BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", *where,
            f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}", path,
            MMLEARN_PROFILE=os.environ.get("MMLEARN_PROFILE", "standard"))
        scrub_outputs(target)


def gpu_check(*_args: str) -> None:
    """Set up, then fail unless PyTorch and TensorFlow both see a GPU (for the GPU workflow)."""
    setup()
    run(PYTHON, "-c", "import mmlearn, torch; n = torch.cuda.device_count(); print('PyTorch GPUs:', n); "
        "assert n > 0, 'PyTorch sees no GPU'; tf = mmlearn.configure_tensorflow(); "
        "g = tf.config.list_physical_devices('GPU'); print('TensorFlow GPUs:', len(g)); "
        "assert g, 'TensorFlow sees no GPU: is MMLEARN_GPU=1 set?'")


def run_seconds(notebook: Path) -> float:
    """Wall time of an executed notebook, from the timestamps the executor stores per cell."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    stamps = [c["metadata"]["execution"] for c in cells if "execution" in c.get("metadata", {})]
    start = datetime.datetime.fromisoformat(stamps[0]["iopub.status.busy"])
    end = datetime.datetime.fromisoformat(stamps[-1]["iopub.status.idle"])
    return (end - start).total_seconds()


# A timing taken beside other jobs is not a result: on 2 cores they slowed a chapter 75-fold.
BUSY_CORES = 0.25  # what other processes may use, on average, for a timing still to count


def machine_busy_seconds() -> float | None:
    """CPU seconds every process of this machine has spent busy since boot (Linux), or None."""
    try:
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def own_busy_seconds() -> float | None:
    """CPU seconds spent by this process and its descendants, live or already waited for (Linux)."""
    parents, spent = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that ended while we looked
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        spent[pid] = sum(int(t) for t in fields[11:15])  # utime, stime, and those of waited children
    if os.getpid() not in spent:
        return None
    ours, grew = {os.getpid()}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= new
        grew = bool(new)
    return sum(spent[pid] for pid in ours) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Cores that other processes kept busy, on average, while the block ran (None off Linux)."""

    def __enter__(self):
        self.start = (datetime.datetime.now(), machine_busy_seconds(), own_busy_seconds())
        return self

    def __exit__(self, *_exc):
        (began, machine0, own0), end = self.start, datetime.datetime.now()
        machine1, own1 = machine_busy_seconds(), own_busy_seconds()
        self.seconds = (end - began).total_seconds()
        known = None not in (machine0, own0, machine1, own1) and self.seconds > 0
        self.cores = round(max(0.0, (machine1 - machine0) - (own1 - own0)) / self.seconds, 2) if known else None


def refuse_if_busy(allow_loaded: bool) -> None:
    import time
    with OtherLoad() as probe:
        time.sleep(5)
    if probe.cores is not None and probe.cores > BUSY_CORES and not allow_loaded:
        sys.exit(f"Other processes keep {probe.cores:.2f} of this machine's {os.cpu_count()} cores busy "
                 "(over 5 s). Timings taken beside other jobs are not results; stop them and re-run, or "
                 "add --loaded to record these times marked as taken on a loaded machine.")


def processor_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what Python's platform module knows.
    Trained results can differ in their last digits between CPU families (the math libraries
    pick other kernels), so the timing record names the one it ran on."""
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_notebooks(*args: str) -> None:
    """Record each notebook's run time in the standard and smoke profiles, and how busy the rest
    of the machine was meanwhile: standard by executing a scratch copy, smoke under nbval (which
    also checks it; see conftest.py). Refuses to start on a busy machine unless --loaded.
    ``--store`` also keeps each timed standard run as that notebook's stored outputs, so one
    execution both refreshes and times the book."""
    args = list(args)
    allow_loaded, store = "--loaded" in args, "--store" in args
    notebooks = notebook_paths([a for a in args if a not in ("--loaded", "--store")])
    setup()
    refuse_if_busy(allow_loaded)
    scratch = ROOT / "_build" / "timed"
    record = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    for path in notebooks:
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        with OtherLoad() as load:
            run(BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir",
                (scratch / path).parent, f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}", path,
                MMLEARN_PROFILE="standard")
        record.setdefault("standard", {})[path] = round(run_seconds(scratch / path), 1)
        if store:
            shutil.copyfile(scratch / path, ROOT / path)
            scrub_outputs(ROOT / path)
        record.setdefault("other_load", {}).setdefault("standard", {})[path] = load.cores
        with OtherLoad() as load:
            test(path, MMLEARN_PROFILE="smoke", MMLEARN_RECORD_TIMES="1")
        record = {**json.loads(TIMES.read_text()), "standard": record["standard"],
                  "other_load": record["other_load"]}  # conftest.py wrote the smoke time
        record["other_load"].setdefault("smoke", {})[path] = load.cores
        record.setdefault("measured", {})[path] = {"date": datetime.date.today().isoformat(),
                                                   "processor": processor_name()}
        TIMES.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    loaded = sorted({p for times in record["other_load"].values() for p, cores in times.items()
                     if cores is not None and cores > BUSY_CORES})
    print(f"Run times written to {TIMES.relative_to(ROOT)}" +
          (f"; taken on a loaded machine (other processes above {BUSY_CORES} cores): {', '.join(loaded)}"
           if loaded else ""))


# The notebooks whose compared outputs come out of numerical linear algebra: they must read the
# same under another BLAS kernel, another thread count and torch's other vector kernels.
NUMERICAL_NOTEBOOKS = ("chapters/part1/02_concepts.ipynb", "chapters/part1/03_math.ipynb",
                       "chapters/part1/05_pytorch.ipynb", "chapters/part2/03_algorithms.ipynb")


def other_numerics() -> dict[str, str]:
    """A numerical configuration unlike the default one: one thread, OpenBLAS's oldest kernel of
    the architecture, MKL's compatibility path and torch's AVX2 (not AVX-512) kernels."""
    import platform
    coretype = {"x86_64": "Prescott", "AMD64": "Prescott"}.get(platform.machine(), "ARMV8")
    return {"MMLEARN_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": coretype, "MKL_CBWR": "COMPATIBLE",
            "ATEN_CPU_CAPABILITY": "avx2" if coretype == "Prescott" else "default"}


def numerics(*notebooks: str) -> None:
    """Run the numerical notebooks under nbval again, in the other numerical configuration."""
    setup()
    env = other_numerics()
    show = ("import threadpoolctl, numpy; print(*sorted({f\"{i['internal_api']} {i.get('architecture')} "
            "threads={i['num_threads']}\" for i in threadpoolctl.threadpool_info()}), sep='; ')")
    for label, extra in (("default", {}), ("other", env)):
        kernels = subprocess.run([PYTHON, "-c", show], cwd=ROOT, env={**os.environ, **extra},
                                 capture_output=True, text=True).stdout.strip()
        print(f"BLAS, {label} configuration: {kernels}", flush=True)
    print("Other configuration:", " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    test(*(notebooks or NUMERICAL_NOTEBOOKS), **env)


def dry_run(*notebooks: str) -> None:
    """Every notebook with the `full` profile's settings and code paths, each training loop cut
    to a few steps: no `full` branch is left untried by CI."""
    setup()
    run(PYTHON, "-m", "pytest", "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={CELL_TIMEOUT_S}",
        *(notebooks or ("chapters/",)), MMLEARN_PROFILE="full", MMLEARN_DRY_RUN="1")


def colab(*args: str) -> None:
    """A Colab-like Python 3.13 with Colab's own frameworks: the first cell installs mmlearn
    there, then a notebook of each Part and the appendix runs under nbval."""
    run(sys.executable, ROOT / "tests" / "colab" / "check.py", *args)


# Platforms no machine of CI's is: the lock must have a wheel there for every package it pins.
OTHER_PLATFORMS = {"macOS on Apple Silicon": "aarch64-apple-darwin", "Windows x86-64": "x86_64-pc-windows-msvc"}


def platforms(*_args: str) -> None:
    """The lock resolves on every supported Python found here, and, wheels only, on macOS
    (Apple Silicon) and Windows."""
    found = 0
    for major, minor in SUPPORTED_PYTHONS:
        python = find_python(major, minor)
        if python is None:
            print(f"Python {major}.{minor}: not found on this machine, not checked")
            continue
        found += 1
        print(f"Python {major}.{minor} ({python}): resolving constraints.txt with pip ...", flush=True)
        run(python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--constraint", CONSTRAINTS, EXTRAS)
    if found < 2:
        sys.exit("fewer than two supported Pythons found: install Python 3.12 or 3.13 to check the lock")
    setup()
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    requirements = VENV / "runtime-requirements.txt"
    requirements.write_text("\n".join(wanted) + "\n")
    for name, platform_name in OTHER_PLATFORMS.items():
        for version in ("3.11.7", "3.13.0"):
            print(f"{name}, Python {version}: resolving constraints.txt, wheels only ...", flush=True)
            run(BIN / "uv", "pip", "compile", requirements, "--constraint", CONSTRAINTS, "--quiet",
                "--python-platform", platform_name, "--python-version", version, "--only-binary", ":all:",
                "--no-header", "--output-file", os.devnull, MACOSX_DEPLOYMENT_TARGET="14.0")


def find_python(major: int, minor: int) -> Path | None:
    """A working Python X.Y: this one, one under pyenv's versions folder, or ``pythonX.Y`` on PATH
    (a pyenv shim for a version that is not selected fails, so each candidate is tried)."""
    import shutil
    if sys.version_info[:2] == (major, minor):
        return Path(sys.executable)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob(f"{major}.{minor}.*/bin/python{major}.{minor}"), reverse=True)
    candidates += [Path(p) for p in [shutil.which(f"python{major}.{minor}")] if p]
    for python in candidates:
        if subprocess.run([python, "-c", "pass"], capture_output=True).returncode == 0:
            return python
    return None


def elsewhere(*_args: str) -> None:
    """What CI checks beyond `test`: the book where its readers run it."""
    failed = []
    for step in (numerics, dry_run, platforms, colab):
        name = step.__name__.replace("_", "-")
        print(f"\n=== tasks.py {name}: {step.__doc__.split(chr(10))[0]}", flush=True)
        try:
            step()
        except SystemExit as stop:
            if stop.code not in (None, 0):
                failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


COMMANDS = {"book": book, "test": test, "execute": execute, "standard": standard, "time": time_notebooks, "lock": lock,
            "elsewhere": elsewhere, "gpu-check": gpu_check, "numerics": numerics, "dry-run": dry_run, "colab": colab,
            "platforms": platforms}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
