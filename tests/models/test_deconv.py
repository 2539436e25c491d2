"""mmlearn.models.deconv: shapes, parameter counts, padding that matches Keras, bad input."""

import mmlearn  # noqa: F401  (first: sets threads and the import order)

import numpy as np
import pytest
import torch

from mmlearn.models import deconv as dt


def test_article_net_parameter_count_matches_the_article():
    counts = dt.parameter_counts(dt.ArticleNet())
    assert counts["total"] == 84_325_418
    assert counts["non_trainable"] == 896          # BatchNorm running mean + variance
    dense = dt.ArticleNet().head[1]
    assert dense.weight.numel() + dense.bias.numel() == 83_886_090


def test_tiny_networks_shapes_and_grid_sizes():
    article = dt.ArticleNet(in_channels=1, n_classes=4, image_size=8, widths=(2, 3, 4))
    assert article(torch.rand(3, 1, 8, 8)).shape == (3, 4)
    assert article.head[1].in_features == 4 * 64 * 64
    formula = dt.FormulaNet(n_classes=5, widths=(4, 8), up_widths=(6,), pool_size=2)
    assert formula(torch.rand(2, 3, 16, 16)).shape == (2, 5)
    assert formula.c_R(formula.c_C(torch.rand(2, 3, 16, 16))).shape == (2, 6, 8, 8)
    # Adaptive pooling makes the head independent of the input size.
    assert formula(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_pool_head_is_small():
    counts = dt.parameter_counts(dt.ArticleNet(head="pool"))
    assert counts["total"] == 84_325_418 - 83_886_090 + 128 * 10 + 10


def test_activation_bytes_scale_with_batch_and_leave_statistics_alone():
    net = dt.FormulaNet(widths=(4,), up_widths=())
    before = net.c_C[0][1].running_mean.clone()
    one, four = dt.activation_bytes(net, 1, 8), dt.activation_bytes(net, 4, 8)
    assert four == 4 * one > 0
    assert torch.equal(before, net.c_C[0][1].running_mean) and net.training


def test_train_step_seconds_trains():
    net = dt.FormulaNet(widths=(4,), up_widths=(4,))
    w = net.g_GC[1].weight.detach().clone()
    times = dt.train_step_seconds(net, batch_size=4, steps=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert not torch.equal(w, net.g_GC[1].weight)


@pytest.mark.parametrize("bad, message", [
    (torch.rand(2, 32, 32, 3), r"x.permute\(0, 3, 1, 2\)"),
    (torch.rand(3, 32, 32), r"shape \(B, 3, H, W\)"),
    (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), "prepare_images"),
    (np.zeros((2, 3, 32, 32), np.float32), "prepare_images"),
    (torch.rand(2, 3, 30, 30), "multiples of 8"),
])


def test_bad_batches_name_the_expected_form(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        dt.FormulaNet()(bad)


def test_article_net_wants_its_image_size():
    with pytest.raises(ValueError, match="H = W = 32"):
        dt.ArticleNet(widths=(2, 2, 2))(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("n_classes", [0, 1, 2.5, None, True])
def test_unknown_class_count_is_rejected(n_classes):
    with pytest.raises(ValueError, match="n_classes must be an int of at least 2"):
        dt.FormulaNet(n_classes=n_classes)


def test_prepare_images():
    x = np.full((2, 4, 4, 3), 255, np.uint8)
    t = dt.prepare_images(x)
    assert t.shape == (2, 3, 4, 4) and t.dtype == torch.float32 and float(t.max()) == 1.0
    assert dt.prepare_images(np.zeros((2, 4, 4), np.uint8), in_channels=1).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"x.transpose\(0, 2, 3, 1\)"):
        dt.prepare_images(np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(TypeError, match=r"uint8 \(0-255\) or float \(0-1\)"):
        dt.prepare_images(np.zeros((2, 4, 4, 3), np.int32))


def test_build_from_a_config():
    assert isinstance(dt.build(dt.Config("formula", widths=(4,), up_widths=())), dt.FormulaNet)
    article = dt.build(dt.Config("article", n_classes=4, head="pool"))
    assert isinstance(article, dt.ArticleNet) and article.head[-1].out_features == 4
    assert dt.parameter_counts(dt.build(dt.ARTICLE))["total"] == 84_325_418
    assert dt.parameter_counts(dt.build(dt.FORMULA)) == dt.parameter_counts(dt.FormulaNet())
    with pytest.raises(ValueError, match="'article', 'formula'|article, formula"):
        dt.Config("resnet")


# --- sizing the timing step to the memory available ------------------------------------------------

GB = 10**9


def test_article_step_memory_is_activations_plus_four_copies_of_the_weights():
    article = dt.ArticleNet()
    weights = 4 * 4 * dt.parameter_counts(article)["trainable"]
    assert dt.step_memory_bytes(article, 8) == dt.activation_bytes(article, 8) + weights
    assert 2.7 * GB < dt.step_memory_bytes(article, 8) < 2.9 * GB


def test_batch_is_halved_until_the_step_fits(capsys):
    article = dt.ArticleNet()
    assert dt.batch_that_fits(article, 8, available=64 * GB) == 8       # plenty: unchanged, silent
    assert capsys.readouterr().out == ""
    assert dt.batch_that_fits(article, 8, available=2 * GB) == 2        # Binder-sized: 8 -> 4 -> 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "runs at batch 2, which fits" in out
    assert dt.batch_that_fits(article, 8, available=1 * GB) == 1        # never below one image
    assert "may still not fit" in capsys.readouterr().out


def test_batch_is_kept_when_memory_is_unknown(monkeypatch):
    from mmlearn import config

    monkeypatch.setattr(config, "available_memory_bytes", lambda: None)
    assert config.batch_that_fits(8, lambda b: b * 100 * GB) == 8
    with pytest.raises(ValueError, match="at least 1"):
        config.batch_that_fits(0, lambda b: 0, available=GB)


def test_available_memory_reads_cgroup_v2_v1_and_meminfo(monkeypatch, tmp_path):
    from mmlearn import config

    cgroup, meminfo = tmp_path / "cgroup", tmp_path / "meminfo"
    (cgroup / "memory").mkdir(parents=True)
    monkeypatch.setattr(config, "_CGROUP", str(cgroup))
    monkeypatch.setattr(config, "_MEMINFO", str(meminfo))
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    assert config.available_memory_bytes() == 20_000_000 * 1024            # no cgroup limit
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("500000000\n")
    assert config.available_memory_bytes() == 20_000_000 * 1024            # v2 without a limit
    (cgroup / "memory.max").write_text("2000000000\n")
    assert config.available_memory_bytes() == 1_500_000_000                # v2: limit minus use
    (cgroup / "memory.max").unlink()
    (cgroup / "memory" / "memory.limit_in_bytes").write_text("1000000000\n")
    (cgroup / "memory" / "memory.usage_in_bytes").write_text("250000000\n")
    assert config.available_memory_bytes() == 750_000_000                  # v1: limit minus use
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")
    assert config.available_memory_bytes() == 20_000_000 * 1024            # v1's "no limit"
    meminfo.unlink()
    (cgroup / "memory" / "memory.limit_in_bytes").unlink()
    assert config.available_memory_bytes() > 0                              # os.sysconf
