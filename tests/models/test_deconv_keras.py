"""mmlearn.models.deconv_keras: shapes, parameter counts, bad input, and weights moved to and from the
PyTorch twin giving the same logits."""

import mmlearn  # noqa: F401  (first: PyTorch before TensorFlow)

import numpy as np
import pytest
import torch

from mmlearn.models import deconv as dt
from mmlearn.models import deconv_keras as dk


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
    with pytest.raises(TypeError, match=r"uint8 \(0-255\) or float \(0-1\)"):
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


def test_build_from_the_shared_config():
    assert dk.build(dk.Config("article", widths=(2, 2, 2), image_size=4)).name == "ArticleNet"
    assert dk.Config is dt.Config and dk.FORMULA is dt.FORMULA
    with pytest.raises(ValueError, match="unknown network"):
        dk.Config("vgg")


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


# --- weights from and to the PyTorch twin ---

CONFIGS = {
    "article": dt.Config("article", widths=(3, 4, 5), image_size=8),
    "formula": dt.Config("formula", widths=(4, 6), up_widths=(5,), pool_size=2, image_size=16),
}


def _pair(name):
    return dk.build(CONFIGS[name]), dt.build(CONFIGS[name])


def _images(keras_model, seed=0):
    return np.random.default_rng(seed).random((3, *keras_model.input_shape[1:]), dtype=np.float32)


def _randomise_batchnorm(keras_model, seed=0):
    """Trained-looking statistics, so that BatchNorm's copy is tested too."""
    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        if isinstance(layer, dk.layers.BatchNormalization):
            n = layer.weights[0].shape
            layer.set_weights([rng.normal(1, .2, n), rng.normal(0, .2, n), rng.normal(0, .2, n),
                               rng.uniform(.5, 1.5, n)])


@pytest.mark.parametrize("name", ["article", "formula"])
def test_keras_to_torch_and_back(name):
    keras_model, torch_model = _pair(name)
    _randomise_batchnorm(keras_model)
    x = _images(keras_model)
    assert dk.max_logit_difference(keras_model, torch_model, x) > 1e-2   # independent inits differ
    dk.keras_to_torch(keras_model, torch_model)
    assert dk.max_logit_difference(keras_model, torch_model, x) < 1e-4
    fresh_keras, _ = _pair(name)
    dk.torch_to_keras(torch_model, fresh_keras)
    assert dk.max_logit_difference(fresh_keras, torch_model, x) < 1e-4


def test_transposed_kernels_are_permuted_not_flipped():
    keras_model, torch_model = _pair("formula")
    dk.keras_to_torch(keras_model, torch_model)
    deconv = torch_model.c_R[0][0]
    with torch.no_grad():
        deconv.weight.copy_(deconv.weight.flip(2, 3))
    assert dk.max_logit_difference(keras_model, torch_model, _images(keras_model)) > 1e-3


def test_dense_rows_must_be_reordered():
    """Without the NHWC -> NCHW reorder of the Dense rows the logits differ."""
    keras_model, torch_model = _pair("article")
    dk.keras_to_torch(keras_model, torch_model)
    kernel = keras_model.get_layer("dense").get_weights()[0]
    with torch.no_grad():
        torch_model.head[1].weight.copy_(torch.from_numpy(kernel.T.copy()))
    assert dk.max_logit_difference(keras_model, torch_model, _images(keras_model)) > 1e-3


def test_mismatched_models_are_refused():
    keras_model, _ = _pair("formula")
    with pytest.raises(ValueError, match="layers with weights"):
        dk.keras_to_torch(keras_model, dt.FormulaNet(widths=(4,), up_widths=()))
    with pytest.raises(ValueError, match="does not fit"):
        dk.keras_to_torch(keras_model, dt.FormulaNet(widths=(4, 7), up_widths=(5,), pool_size=2))
    with pytest.raises(TypeError, match="expected a Keras model and a PyTorch module"):
        dk.keras_to_torch(torch.nn.Linear(2, 2), keras_model)


def test_max_logit_difference_wants_channels_last_floats():
    keras_model, torch_model = _pair("formula")
    with pytest.raises(ValueError, match="prepare_images"):
        dk.max_logit_difference(keras_model, torch_model, np.zeros((2, 16, 16, 3), np.uint8))


def test_batchnorm_momentum_agrees_so_training_agrees():
    for name in CONFIGS:
        keras_model, torch_model = _pair(name)
        k_bn = [l.momentum for l in keras_model.layers if isinstance(l, dk.layers.BatchNormalization)]
        t_bn = [m.momentum for m in torch_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert np.allclose(t_bn, [1 - m for m in k_bn])
        assert set(k_bn) == ({0.99} if name == "article" else {0.9})
