"""mmlearn.deconv_keras: shapes, parameter counts, bad input."""

import mmlearn  # noqa: F401  (first: PyTorch before TensorFlow)

import numpy as np
import pytest

from mmlearn import deconv_keras as dk


def test_article_net_parameter_count_matches_the_article():
    model = dk.ArticleNet()
    assert dk.parameter_counts(model) == {"trainable": 84_324_522, "non_trainable": 896,
                                          "total": 84_325_418}
    assert model.get_layer("dense").count_params() == 83_886_090
    assert model.get_layer("flatten").output.shape[1:] == (256 * 256 * 128,)


def test_formula_net_shapes():
    model = dk.FormulaNet(n_classes=5, widths=(4, 8), up_widths=(6,), pool_size=2, image_size=16)
    assert model.get_layer("c_C2_relu").output.shape[1:] == (4, 4, 8)
    assert model.get_layer("c_R1_relu").output.shape[1:] == (8, 8, 6)
    assert model.get_layer("p_AP").output.shape[1:] == (2, 2, 6)
    assert model(np.zeros((3, 16, 16, 3), np.float32)).shape == (3, 5)


def test_blocks_resize_as_documented():
    x = dk.keras.Input(shape=(8, 8, 5))
    assert dk.conv_block(x, 7, 4, 2).shape[1:] == (4, 4, 7)
    assert dk.deconv_block(x, 7).shape[1:] == (16, 16, 7)
    with pytest.raises(ValueError, match="kernel_size - stride to be even"):
        dk.deconv_block(x, 7, kernel_size=3, stride=2)


def test_formula_net_trains_on_tiny_batches():
    model = dk.compile_classifier(dk.FormulaNet(widths=(4,), up_widths=(4,), image_size=8))
    before = model.get_layer("g_GC").get_weights()[0].copy()
    times = dk.train_step_seconds(model, batch_size=4, steps=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert not np.array_equal(before, model.get_layer("g_GC").get_weights()[0])


def test_activation_bytes():
    model = dk.FormulaNet(widths=(4,), up_widths=(), image_size=8)
    # conv, BN, ReLU: 3 x (4*4*4); pool (1*1*4); flatten 4; dense 10 -> 166 floats per image
    assert dk.activation_bytes(model, batch_size=2) == 2 * 4 * (3 * 64 + 4 + 4 + 10)


def test_channels_first_input_names_the_expected_form():
    with pytest.raises(ValueError, match=r"expected shape=\(None, 32, 32, 3\)"):
        dk.FormulaNet()(np.zeros((2, 3, 32, 32), np.float32))


def test_prepare_images():
    x = dk.prepare_images(np.full((2, 4, 4, 3), 255, np.uint8))
    assert x.dtype == np.float32 and x.max() == 1.0 and x.shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match=r"x.transpose\(0, 2, 3, 1\)"):
        dk.prepare_images(np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(TypeError, match="uint8 or float32"):
        dk.prepare_images(np.zeros((2, 4, 4, 3), np.int64))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_classes": 1}, "n_classes must be an int of at least 2"),
    ({"n_classes": None}, "n_classes must be an int of at least 2"),
    ({"image_size": 30}, "multiple of 8"),
    ({"pool_size": 3}, "pool_size must divide the 16x16 grid"),
    ({"widths": (4, -1)}, "widths must be positive ints"),
])
def test_bad_configurations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dk.FormulaNet(**kwargs)


def test_build_by_name():
    assert dk.build("article", widths=(2, 2, 2), image_size=4).name == "ArticleNet"
    with pytest.raises(ValueError, match="unknown network"):
        dk.build("vgg")


def test_article_net_at_stride_one_keeps_the_grid_and_the_parameters():
    up = dk.ArticleNet(widths=(8,), head="pool", bn_momentum=0.9)
    same = dk.ArticleNet(widths=(8,), head="pool", up_stride=1, bn_momentum=0.9)
    assert dk.parameter_counts(up) == dk.parameter_counts(same)
    assert up.get_layer("stage1_up_deconv").output.shape[1:3] == (64, 64)
    assert same.get_layer("stage1_up_deconv").output.shape[1:3] == (32, 32)
    with pytest.raises(ValueError, match="up_stride"):
        dk.ArticleNet(up_stride=1)                      # the Flatten head would change size
    with pytest.raises(ValueError, match="up_stride"):
        dk.ArticleNet(head="pool", up_stride=3)


def test_train_steps_lowers_the_loss_and_checks_its_input():
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3), dtype=np.float32)
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    model = dk.compile_classifier(dk.FormulaNet(n_classes=2, widths=(4, 8), up_widths=(4,), image_size=16))
    before = model.evaluate(x, y, verbose=0)[0]
    dk.train_steps(model, x, y, steps=30, batch_size=16)
    assert model.evaluate(x, y, verbose=0)[0] < before
    with pytest.raises(ValueError, match="at least one batch"):
        dk.train_steps(model, x[:8], y[:8], steps=1, batch_size=16)
    with pytest.raises(ValueError, match="at least 1"):
        dk.train_steps(model, x, y, steps=0, batch_size=16)
