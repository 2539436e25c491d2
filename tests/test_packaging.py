"""The pins are chosen once, in pyproject.toml; environment.yml (Binder, conda) must agree."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {r.replace(" ", "").lower() for r in reqs}


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = set()
    for line in lines[start + 1:]:
        m = re.match(r"^\s+-\s+(\S+)\s*$", line)
        if not m:
            break
        if m.group(1) not in ("-e", "-e.", "."):
            reqs.add(m.group(1).lower())
    return reqs


def test_every_dependency_is_pinned_exactly():
    for req in pyproject_requirements():
        assert re.fullmatch(r"[a-z0-9_.\-]+(\[[a-z0-9_,\-]+\])?==[0-9][0-9a-z.+\-]*", req), req


def test_environment_yml_matches_pyproject():
    pyproject, env = pyproject_requirements(), environment_requirements()
    assert env - pyproject == set(), "in environment.yml only"
    assert pyproject - env == set(), "in pyproject.toml only"


def test_environment_yml_installs_the_package_and_python_311():
    text = (ROOT / "environment.yml").read_text()
    assert "- -e ." in text and "python=3.11" in text


def test_package_version_matches_pyproject():
    import mmlearn
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert mmlearn.__version__ == version
