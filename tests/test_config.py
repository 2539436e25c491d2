import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn import config


def test_default_profile_is_standard(monkeypatch):
    monkeypatch.delenv("MMLEARN_PROFILE", raising=False)
    assert mm.get_profile() == "standard"


@pytest.mark.parametrize("name", ["smoke", "standard", "full", " Smoke "])
def test_known_profiles(monkeypatch, name):
    monkeypatch.setenv("MMLEARN_PROFILE", name)
    assert mm.get_profile() == name.strip().lower()


def test_bad_profile_says_what_to_use(monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, standard, full"):
        mm.get_profile()


def test_every_experiment_has_every_profile():
    for name, sizes in config.SIZES.items():
        assert set(sizes) == set(mm.PROFILES), name
        for size in sizes.values():
            assert size.epochs >= 0 and size.batch_size >= 1, name  # epochs 0: not trained in that profile


def test_smoke_is_never_bigger_than_standard():
    def n(v):
        return float("inf") if v is None else v
    for name, sizes in config.SIZES.items():
        smoke, standard = sizes["smoke"], sizes["standard"]
        assert n(smoke.n_train) <= n(standard.n_train), name
        assert smoke.epochs <= standard.epochs, name


def test_run_size_follows_profile(monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "smoke")
    assert mm.run_size("background.fusion") == config.SIZES["background.fusion"]["smoke"]


def test_unknown_experiment_lists_known_ones():
    with pytest.raises(KeyError, match="background.fusion"):
        mm.run_size("no.such.experiment")


def test_device_override(monkeypatch):
    monkeypatch.setenv("MMLEARN_DEVICE", "cpu")
    assert mm.get_device() == torch.device("cpu")
    monkeypatch.setenv("MMLEARN_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cuda, mps or cpu"):
        mm.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_asked_for_but_missing(monkeypatch):
    monkeypatch.setenv("MMLEARN_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no cuda device"):
        mm.get_device()


def test_seeding_repeats_numpy_and_torch():
    def draw():
        mm.seed_everything(123)
        return np.random.rand(3), torch.rand(3), torch.nn.Linear(4, 2).weight.detach().clone()
    a, b = draw(), draw()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_seed_must_be_non_negative_int():
    with pytest.raises(ValueError, match="non-negative int"):
        mm.seed_everything(-1)


def test_setup_prints_profile_device_threads(capsys, monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "smoke")
    info = mm.setup(seed=1)
    out = capsys.readouterr().out
    assert "profile: smoke" in out and "device: " in out and f"threads: {info.threads}" in out


def test_sizes_table_names_each_experiment_once():
    """A repeated key in the SIZES literal would silently replace the first row."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(config.__file__).read_text())
    tables = [node.value for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
              and getattr(node.target, "id", "") == "SIZES"]
    assert len(tables) == 1
    keys = [k.value for k in tables[0].keys]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("1", True), (" 1 ", True)])
def test_dry_run_switch(monkeypatch, value, expected):
    monkeypatch.setenv("MMLEARN_DRY_RUN", value)
    assert config.dry_run() is expected


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_bad_dry_run_value_says_what_to_use(monkeypatch, value):
    monkeypatch.setenv("MMLEARN_DRY_RUN", value)
    with pytest.raises(ValueError, match="MMLEARN_DRY_RUN=1"):
        mm.run_size("background.fusion")


def test_dry_run_keeps_the_batch_and_cuts_data_and_epochs(monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "full")
    monkeypatch.setenv("MMLEARN_DRY_RUN", "1")
    for name, sizes in config.SIZES.items():
        full, dry = sizes["full"], mm.run_size(name)
        if name in config.DRY_RUN_BATCH_SIZE:  # the article's network: a small batch, exactly two steps
            assert dry.batch_size == config.DRY_RUN_BATCH_SIZE[name] < full.batch_size, name
            rows = config.DRY_RUN_STEPS * dry.batch_size
        else:
            rows = max(config.DRY_RUN_STEPS * full.batch_size, config.DRY_RUN_MIN_ROWS)
            assert dry.batch_size == full.batch_size, name
        assert dry.epochs == min(full.epochs, 1), name  # an experiment not trained stays untrained
        for n_dry, n_full in ((dry.n_train, full.n_train), (dry.n_test, full.n_test)):
            assert n_dry == (rows if n_full is None else min(n_full, rows)), name
    assert mm.run_size("deconv.formula") == mm.RunSize(n_train=128, n_test=128, epochs=1, batch_size=64)
    assert mm.run_size("deconv.article_train") == mm.RunSize(n_train=8, n_test=8, epochs=1, batch_size=4)
    # a profile named explicitly is the table as written, for chapters that quote it
    assert mm.run_size("deconv.formula", "full") == config.SIZES["deconv.formula"]["full"]


def test_setup_says_when_it_is_a_dry_run(capsys, monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "full")
    monkeypatch.setenv("MMLEARN_DRY_RUN", "1")
    mm.setup(seed=0)
    assert "profile: full (dry run: a few steps per loop)" in capsys.readouterr().out


def run_cell(source, **names):
    """Execute ``source`` as a dry run would and return its namespace."""
    namespace = {"mm": mm, **names}
    exec(config.relax_profile_claims(source), namespace)
    return namespace


def test_dry_run_evaluates_profile_claims_without_enforcing_them(monkeypatch, capsys):
    monkeypatch.setenv("MMLEARN_PROFILE", "full")
    cell = ('threshold = {"smoke": 0.1, "standard": 0.9, "full": 0.95}[mm.get_profile()]\n'
            'low = threshold / 2\n'
            'assert accuracy >= low, accuracy\n'
            'assert accuracy > {"smoke": 0, "standard": 1, "full": 1}[mm.get_profile()]\n'
            'if mm.get_profile() != "smoke":\n'
            '    assert accuracy > 0.99\n')
    with pytest.raises(AssertionError):
        exec(cell, {"mm": mm, "accuracy": 0.2})  # as written, the claims fail after a few steps
    run_cell(cell, accuracy=0.2)
    out = capsys.readouterr().out
    assert out.count("claim not enforced") == 3 and "accuracy >= low" in out
    run_cell(cell, accuracy=1.5)
    assert "claim not enforced" not in capsys.readouterr().out


def test_dry_run_keeps_structural_checks_and_errors():
    with pytest.raises(AssertionError):  # no profile in it: a shape check stays a check
        run_cell("assert shape == (3, 4)", shape=(3, 5))
    with pytest.raises(KeyError):  # a claim that cannot even be computed still fails
        run_cell('assert results["missing"] > {"full": 0.9}[mm.get_profile()]', results={})
    with pytest.raises(AssertionError):
        run_cell('size = mm.run_size("deconv.formula")\nassert size.epochs == 2')


def test_dry_run_leaves_cells_that_are_not_python_alone():
    assert config.relax_profile_claims("%timeit x = 1") == "%timeit x = 1"


def test_names_set_from_the_profile_carry_over_to_later_cells(capsys, monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "full")
    names, namespace = set(), {"mm": mm, "score": 0.1}
    for cell in ('profile = mm.get_profile()', 'if profile != "smoke":\n    assert score > 0.9'):
        exec(config.relax_profile_claims(cell, names), namespace)
    assert names == {"profile"} and "claim not enforced" in capsys.readouterr().out
    with pytest.raises(AssertionError):  # no profile in it: enforced
        exec(config.relax_profile_claims("assert score < 0.05", names), namespace)
