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
        assert dry.n_val == min(full.n_val, rows), name
        assert dry.n_seeds == full.n_seeds, name        # every seed's code path runs
    assert mm.run_size("deconv.formula") == mm.RunSize(n_train=128, n_test=128, epochs=1, batch_size=64, n_val=128)
    assert mm.run_size("deconv.article_train") == mm.RunSize(n_train=8, n_test=8, epochs=1, batch_size=4, n_val=8)
    # a profile named explicitly is the table as written, for chapters that quote it
    assert mm.run_size("deconv.formula", "full") == config.SIZES["deconv.formula"]["full"]


def test_setup_says_when_it_is_a_dry_run(capsys, monkeypatch):
    monkeypatch.setenv("MMLEARN_PROFILE", "full")
    monkeypatch.setenv("MMLEARN_DRY_RUN", "1")
    mm.setup(seed=0)
    assert "profile: full (dry run: a few steps per loop)" in capsys.readouterr().out
