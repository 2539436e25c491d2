"""The package's layout rules, so that each thing keeps one home.

* ``mmlearn/`` holds the core: configuration, input checks, training, metrics, plots, and the
  blocks several chapters build from (convolution blocks, the joint-space heads, attention, the
  contrastive loss, image regions) in ``blocks.py``. ``mmlearn/data/`` is core too: one module
  per data set, the store they share, and the pretrained weights.
* ``mmlearn/models/`` holds the chapters' models, one module per family (or a few, for a
  family that spans chapters). The core never imports a model module.
* A model module imports the core and its own family only, never another family: a block two
  families need moves to ``blocks.py``.
* A Keras twin is ``X_keras.py`` beside ``X.py``: a name defined in both takes the same
  required parameters, and the optional parameters they share come in the same order.
* Tests mirror the layout: ``tests/models/test_X.py`` tests ``mmlearn/models/X.py``, and the data
  sets' tests are in ``tests/data/``.
* A module whose models the chapters train builds them one way: a frozen dataclass ``Config``,
  ``build(config)``, and the chapters' configurations as upper-case module constants
  (``deconv.FORMULA``), which the chapters and ``bench/cases.py`` both build.
"""

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmlearn"

CORE = ("_frameworks", "config", "inputs", "operators", "metrics", "plots", "source", "distributed", "training",
        "blocks", "blocks_keras", "taxonomy", "data", "data.store", "data.digits", "data.cifar10", "data.easy_vqa",
        "data.shapes", "data.pretrained")
FAMILIES = {  # family -> its model modules (chapters)
    "deconv": ("models.deconv", "models.deconv_keras"),            # Part I, chapters 2-5 and 7
    "fusion": ("models.fusion",),                                  # Part I, chapter 6
    "crossmodal": ("models.crossmodal", "models.tagging"),         # Part II, chapters 3-4 and 5a
    "generation": ("models.generation",),                          # II.5b
    "vqa": ("models.vqa",),                                        # II.5c
    "audio": ("models.audio", "models.speech", "models.tts"),      # II.5d-f
}
FAMILY_OF = {module: family for family, modules in FAMILIES.items() for module in modules}


def modules() -> list[str]:
    """Every module of the package as a dotted name below ``mmlearn`` (a package by its own name)."""
    names = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if parts and parts != ("models",):       # models/__init__.py only documents the family modules
            names.append(".".join(parts))
    return sorted(names)


def source_file(name: str) -> Path:
    path = PACKAGE.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(name: str) -> set[str]:
    """The mmlearn modules ``name`` imports, at the top or inside a function, as dotted names."""
    known, found = set(modules()), set()
    for node in ast.walk(ast.parse(source_file(name).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mmlearn":
            below = node.module.removeprefix("mmlearn").lstrip(".")
            for alias in node.names:           # `from mmlearn.models import audio` imports a module
                candidate = f"{below}.{alias.name}".lstrip(".")
                found.add(candidate if candidate in known else below)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("mmlearn.") for a in node.names if a.name.startswith("mmlearn.")}
    return found - {name, ""}


def test_every_module_has_a_place():
    placed = set(CORE) | set(FAMILY_OF)
    assert set(modules()) == placed, ("place each module in CORE or FAMILIES of this test: "
                                      f"unplaced {set(modules()) - placed}, gone {placed - set(modules())}")


def test_the_folders_say_what_is_core_and_what_is_a_model():
    assert all(not m.startswith("models") for m in CORE)
    assert all(m.startswith("models.") for m in FAMILY_OF)


@pytest.mark.parametrize("name", CORE)
def test_the_core_never_imports_a_model_module(name):
    assert not {m for m in imported_modules(name) if m.startswith("models")}, imported_modules(name)


@pytest.mark.parametrize("name", sorted(FAMILY_OF))
def test_a_model_module_imports_the_core_and_its_own_family_only(name):
    allowed = set(CORE) | set(FAMILIES[FAMILY_OF[name]])
    strays = imported_modules(name) - allowed
    assert not strays, (f"{name} imports {strays} from another chapter family; move what both "
                        "need into mmlearn/blocks.py (or another core module)")


def test_the_rules_see_imports():  # the checker itself: known imports are found, in every form
    assert "blocks" in imported_modules("models.vqa")
    assert "models.crossmodal" in imported_modules("models.tagging")
    assert "data.easy_vqa" in imported_modules("data.shapes")
    assert "models.audio" in imported_modules("models.speech")     # from mmlearn.models import audio


def test_tests_mirror_the_layout():
    tests = Path(__file__).parent
    model_tests = {p.stem.removeprefix("test_") for p in (tests / "models").glob("test_*.py")}
    assert model_tests == {m.removeprefix("models.") for m in FAMILY_OF}, (
        "each model module X has its tests in tests/models/test_X.py, and only those live there")
    assert (tests / "data" / "test_data.py").exists() and (tests / "data" / "test_shapes.py").exists()


TWINS = sorted(m.removesuffix("_keras") for m in modules() if m.endswith("_keras"))


def public_callables(module) -> dict:
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", "") == module.__name__}


def parameters(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(obj):
        params = params[1:]  # self
    params = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return ([p.name for p in params if p.default is p.empty],
            [p.name for p in params if p.default is not p.empty])


def test_twins_sit_beside_their_modules():
    assert TWINS == ["blocks", "models.deconv"]
    assert all(source_file(base).exists() for base in TWINS)


@pytest.mark.parametrize("base", sorted(TWINS))
def test_a_twin_takes_the_same_leading_parameters(base):
    torch_side = public_callables(importlib.import_module(f"mmlearn.{base}"))
    keras_side = public_callables(importlib.import_module(f"mmlearn.{base}_keras"))
    shared = sorted(set(torch_side) & set(keras_side))
    assert len(shared) >= 6, shared   # the twins really share their public names
    for name in shared:
        (t_required, t_optional), (k_required, k_optional) = parameters(torch_side[name]), parameters(keras_side[name])
        assert t_required == k_required, (f"{base}.{name}{t_required} vs {base}_keras.{name}{k_required}")
        common = set(t_optional) & set(k_optional)
        assert [p for p in t_optional if p in common] == [p for p in k_optional if p in common], name


# --- one way to build a chapter's model ------------------------------------------------------------

BUILDERS = tuple(f"models.{m}" for m in ("deconv", "deconv_keras", "fusion", "crossmodal", "tagging", "vqa",
                                          "audio", "speech", "tts", "generation"))


@pytest.mark.parametrize("name", BUILDERS)
def test_a_model_module_builds_from_one_config(name):
    module = importlib.import_module(f"mmlearn.{name}")
    config = getattr(module, "Config", None)
    assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen, (
        f"mmlearn.{name} needs Config, a frozen dataclass of what decides its models")
    params = list(inspect.signature(module.build).parameters.values())
    assert params and params[0].name == "config" and all(p.default is not p.empty for p in params[1:]), (
        f"mmlearn.{name}.build takes the Config as its one required argument, got {params}")
    named = [k for k, v in vars(module).items() if isinstance(v, config)]
    assert named and all(k.isupper() for k in named), (
        f"mmlearn.{name} names the chapters' configurations as upper-case constants, got {named}")
    others = [k for k, v in public_callables(module).items()
              if (k.startswith("build") and k != "build") or (k.endswith("Config") and v is not config)]
    assert not others, f"mmlearn.{name} builds its models through Config and build only; also found {others}"


def test_the_benchmarked_families_are_builders():
    source = (PACKAGE.parent / "bench" / "cases.py").read_text()
    used = {alias.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and node.module == "mmlearn.models" for alias in node.names}
    families = {f"models.{name}" for name in used} & set(FAMILY_OF)
    assert families and families <= set(BUILDERS), families - set(BUILDERS)
