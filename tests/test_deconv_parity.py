"""mmlearn.deconv_parity: weights moved between Keras and PyTorch give the same logits."""

import mmlearn  # noqa: F401  (first: PyTorch before TensorFlow)

import numpy as np
import pytest
import torch

from mmlearn import deconv_keras as dk
from mmlearn import deconv_parity as dp
from mmlearn import deconv_torch as dt

CONFIGS = {
    "article": dict(widths=(3, 4, 5), image_size=8),
    "formula": dict(widths=(4, 6), up_widths=(5,), pool_size=2),
}


def _pair(name):
    config = CONFIGS[name]
    keras_model = dk.build(name, **config, **({"image_size": 16} if name == "formula" else {}))
    return keras_model, dt.build(name, **config)


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
    assert dp.max_logit_difference(keras_model, torch_model, x) > 1e-2   # independent inits differ
    dp.keras_to_torch(keras_model, torch_model)
    assert dp.max_logit_difference(keras_model, torch_model, x) < 1e-4
    fresh_keras, _ = _pair(name)
    dp.torch_to_keras(torch_model, fresh_keras)
    assert dp.max_logit_difference(fresh_keras, torch_model, x) < 1e-4


def test_transposed_kernels_are_permuted_not_flipped():
    keras_model, torch_model = _pair("formula")
    dp.keras_to_torch(keras_model, torch_model)
    deconv = torch_model.c_R[0][0]
    with torch.no_grad():
        deconv.weight.copy_(deconv.weight.flip(2, 3))
    assert dp.max_logit_difference(keras_model, torch_model, _images(keras_model)) > 1e-3


def test_dense_rows_must_be_reordered():
    """Without the NHWC -> NCHW reorder of the Dense rows the logits differ."""
    keras_model, torch_model = _pair("article")
    dp.keras_to_torch(keras_model, torch_model)
    kernel = keras_model.get_layer("dense").get_weights()[0]
    with torch.no_grad():
        torch_model.head[1].weight.copy_(torch.from_numpy(kernel.T.copy()))
    assert dp.max_logit_difference(keras_model, torch_model, _images(keras_model)) > 1e-3


def test_mismatched_models_are_refused():
    keras_model, _ = _pair("formula")
    with pytest.raises(ValueError, match="layers with weights"):
        dp.keras_to_torch(keras_model, dt.FormulaNet(widths=(4,), up_widths=()))
    with pytest.raises(ValueError, match="does not fit"):
        dp.keras_to_torch(keras_model, dt.FormulaNet(widths=(4, 7), up_widths=(5,), pool_size=2))
    with pytest.raises(TypeError, match="expected a Keras model and a PyTorch module"):
        dp.keras_to_torch(torch.nn.Linear(2, 2), keras_model)


def test_max_logit_difference_wants_channels_last_floats():
    keras_model, torch_model = _pair("formula")
    with pytest.raises(ValueError, match="prepare_images"):
        dp.max_logit_difference(keras_model, torch_model, np.zeros((2, 16, 16, 3), np.uint8))


def test_batchnorm_momentum_agrees_so_training_agrees():
    for name in CONFIGS:
        keras_model, torch_model = _pair(name)
        k_bn = [l.momentum for l in keras_model.layers if isinstance(l, dk.layers.BatchNormalization)]
        t_bn = [m.momentum for m in torch_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert np.allclose(t_bn, [1 - m for m in k_bn])
        assert set(k_bn) == ({0.99} if name == "article" else {0.9})
