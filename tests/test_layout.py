"""The package's layout rules, so that each thing keeps one home.

* Shared code lives in the core modules; what several chapters build from (convolution
  blocks, the joint-space heads, attention, the contrastive loss, image regions) is in
  ``blocks.py``. The core never imports a chapter's module.
* Each chapter family's modules import the core and their own family only, never another
  family: a block two families need moves to ``blocks.py``.
* A Keras twin is ``X_keras.py`` beside ``X.py``: a name defined in both takes the same
  required parameters, and the optional parameters they share come in the same order.
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

CORE = ("_frameworks", "config", "inputs", "operators", "data", "shapes", "metrics", "plots", "source",
        "distributed", "training", "blocks", "blocks_keras")
FAMILIES = {  # family -> its modules (chapters)
    "deconv": ("deconv", "deconv_keras"),               # Part I, chapters 2-5 and 7
    "fusion": ("fusion",),                              # Part I, chapter 6
    "crossmodal": ("crossmodal", "tagging"),            # Part II, chapters 3-4 and 5a
    "generation": ("generation",),                      # II.5b
    "vqa": ("vqa",),                                    # II.5c
    "audio": ("audio", "speech", "tts"),                # II.5d-f
    "taxonomy": ("taxonomy",),                          # the FAQs' definitions
}
FAMILY_OF = {module: family for family, modules in FAMILIES.items() for module in modules}


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imported_modules(name: str) -> set[str]:
    """The mmlearn modules ``name`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmlearn"):
            if node.module == "mmlearn":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mmlearn.")}
    return found - {name}


def test_every_module_has_a_place():
    placed = set(CORE) | set(FAMILY_OF)
    assert set(modules()) == placed, ("place each module in CORE or FAMILIES of this test: "
                                      f"unplaced {set(modules()) - placed}, gone {placed - set(modules())}")


@pytest.mark.parametrize("name", CORE)
def test_the_core_never_imports_a_chapter_module(name):
    assert not imported_modules(name) & set(FAMILY_OF), imported_modules(name)


@pytest.mark.parametrize("name", sorted(FAMILY_OF))
def test_a_chapter_module_imports_the_core_and_its_own_family_only(name):
    allowed = set(CORE) | set(FAMILIES[FAMILY_OF[name]])
    strays = imported_modules(name) - allowed
    assert not strays, (f"{name} imports {strays} from another chapter family; move what both "
                        "need into mmlearn/blocks.py (or another core module)")


def test_the_rules_see_imports():  # the checker itself: a known import is found
    assert "blocks" in imported_modules("vqa") and "crossmodal" in imported_modules("tagging")


TWINS = [p.stem.removesuffix("_keras") for p in PACKAGE.glob("*_keras.py")]


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
    assert sorted(TWINS) == ["blocks", "deconv"]
    assert all((PACKAGE / f"{base}.py").exists() for base in TWINS)


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

BUILDERS = ("deconv", "deconv_keras", "fusion", "crossmodal", "tagging", "vqa", "audio", "generation")


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
            if isinstance(node, ast.ImportFrom) and node.module == "mmlearn" for alias in node.names}
    families = used & set(FAMILY_OF)
    assert families and families <= set(BUILDERS), families - set(BUILDERS)
