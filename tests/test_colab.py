"""Every notebook's first cell installs mmlearn in Colab, and only there, from the branch the book
is published from (``_config.yml``: the branch every Colab link opens).

The end-to-end test builds the package, makes a fresh virtual environment (the book's other
dependencies are linked in, so nothing is downloaded), fakes Colab's marker module, runs the
first cell of a notebook in IPython with the local build as the install source, and imports
mmlearn from where the cell installed it.
"""
import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BOOK = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
REQUIREMENT = f"mmlearn @ git+{BOOK['url']}@{BOOK['branch']}"
INSTALL_BLOCK = textwrap.dedent(f'''\
    import sys
    if "google.colab" in sys.modules:  # Colab only: add what Colab lacks; its torch and TensorFlow stay
        import subprocess
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                              "{REQUIREMENT}"],
    ''')


def first_code_cell(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_installs_this_release_only_in_colab(path):
    cell = first_code_cell(path)
    assert cell.startswith(INSTALL_BLOCK), (
        f"the first code cell must start with the Colab install block:\n{INSTALL_BLOCK}")
    assert "mm.setup(" in cell, "the first code cell should end with the one set-up call"


def fresh_environment(tmp: Path) -> Path:
    """A new venv that sees the book's installed dependencies but not mmlearn itself."""
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    deps = tmp / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if "mmlearn" not in entry.name.replace("hmmlearn", ""):
            (deps / entry.name).symlink_to(entry)
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    Path(fresh_site, "book_dependencies.pth").write_text(f"{deps}\n")
    return python


HARNESS = '''
import importlib.util, json, sys
if sys.argv[1] == "colab":
    import google.colab  # Colab's kernels have imported this before any cell runs
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
cell = open(sys.argv[2]).read()
if sys.argv[1] == "colab":
    shell.run_cell(cell).raise_error()
    import mmlearn
    print(json.dumps({"file": mmlearn.__file__, "version": mmlearn.__version__}))
else:
    shell.run_cell(cell.split("import mmlearn")[0]).raise_error()
    print(json.dumps({"installed": importlib.util.find_spec("mmlearn") is not None}))
'''


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("colab")
    source = tmp / "source"  # build from a copy: setuptools leaves build/ behind in the tree
    shutil.copytree(ROOT / "mmlearn", source / "mmlearn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp / "dist"), str(source)], check=True, timeout=300)
    wheel = next((tmp / "dist").glob("mmlearn-*.whl"))
    python = fresh_environment(tmp)
    marker = tmp / "fake_colab" / "google" / "colab"
    marker.mkdir(parents=True)
    (marker / "__init__.py").write_text("")
    cell = first_code_cell(NOTEBOOKS[0]).replace(REQUIREMENT, f"mmlearn @ {wheel.as_uri()}")
    (tmp / "cell.py").write_text(cell)
    (tmp / "harness.py").write_text(HARNESS)
    # outside Colab first: the same environment must still lack mmlearn afterwards
    return {mode: run_harness(tmp, python, mode) for mode in ("local", "colab")}, tmp


def run_harness(tmp, python, mode):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHONPATH": str(tmp / "fake_colab"),
           "MMLEARN_PROFILE": "smoke", "MMLEARN_CACHE": str(tmp / "cache")}
    result = subprocess.run([python, tmp / "harness.py", mode, tmp / "cell.py"], cwd=tmp, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_outside_colab_the_cell_installs_nothing(colab_like):
    results, _ = colab_like
    assert results["local"] == {"installed": False}


def test_in_colab_the_cell_installs_the_package_and_it_imports(colab_like):
    results, tmp = colab_like
    out = results["colab"]
    assert out["version"] == VERSION
    assert Path(out["file"]).is_relative_to(tmp / "venv"), out["file"]
