"""Move trained weights between the Keras and PyTorch versions of Part I's networks.

:mod:`mmlearn.deconv_keras` and :mod:`mmlearn.deconv_torch` build the same layers in the same
order, so copying is a walk over both models' weighted layers in step. What changes on the way
is only layout:

===================  ==================================  =================================
layer                Keras                               PyTorch
===================  ==================================  =================================
Conv2D               kernel (kh, kw, C_in, C_out)  HWIO  weight (C_out, C_in, kh, kw)  OIHW
Conv2DTranspose      kernel (kh, kw, C_out, C_in)        weight (C_in, C_out, kh, kw)
BatchNormalization   gamma, beta, moving mean / var      weight, bias, running mean / var
Dense after Flatten  kernel (H * W * C, n), NHWC order   weight (n, C * H * W), NCHW order
===================  ==================================  =================================

Both transposed convolutions are the adjoint of the *same* cross-correlation, so their
kernels are only permuted, never flipped (a test checks that flipping would break equality).
The Dense rows must be reordered, because Flatten walks a channels-last map in (h, w, c)
order and a channels-first map in (c, h, w) order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmlearn.deconv_keras import keras, layers

_PAIRS = ((layers.Conv2DTranspose, nn.ConvTranspose2d),   # before Conv2D: it subclasses it
          (layers.Conv2D, nn.Conv2d),
          (layers.BatchNormalization, nn.BatchNorm2d),
          (layers.Dense, nn.Linear))


def _paired_layers(keras_model: keras.Model, torch_model: nn.Module):
    """[(keras_layer, torch_module, flatten_hwc or None)] in model order, after checking they match."""
    if not isinstance(keras_model, keras.Model) or not isinstance(torch_model, nn.Module):
        raise TypeError(f"expected a Keras model and a PyTorch module from mmlearn.deconv_keras / "
                        f"deconv_torch, got {type(keras_model).__name__} and {type(torch_model).__name__}")
    k_layers, flat = [], None
    for layer in keras_model.layers:
        if isinstance(layer, layers.Flatten):
            flat = tuple(layer.input.shape[1:])          # (H, W, C) before the Dense layer
        elif layer.weights:
            k_layers.append((layer, flat if isinstance(layer, layers.Dense) else None))
    t_layers = [m for m in torch_model.modules() if isinstance(m, tuple(t for _, t in _PAIRS))]
    if len(k_layers) != len(t_layers):
        raise ValueError(f"the Keras model has {len(k_layers)} layers with weights, the PyTorch model "
                         f"{len(t_layers)}: build both with the same network and configuration")
    pairs = []
    for i, ((k, flat), t) in enumerate(zip(k_layers, t_layers)):
        wanted = next(t_type for k_type, t_type in _PAIRS if isinstance(k, k_type))
        if type(t) is not wanted:
            raise ValueError(f"layer {i}: Keras {type(k).__name__} {k.name!r} faces PyTorch "
                             f"{type(t).__name__}, expected {wanted.__name__}: the two models differ")
        if isinstance(t, nn.BatchNorm2d) and not np.isclose(t.eps, k.epsilon):
            raise ValueError(f"layer {i}: BatchNorm epsilon is {k.epsilon} in Keras but {t.eps} in "
                             "PyTorch; outputs would differ")
        pairs.append((k, t, flat))
    return pairs


def _dense_to_torch(kernel: np.ndarray, flat) -> np.ndarray:
    """Keras Dense kernel (H*W*C, n) -> PyTorch Linear weight (n, C*H*W)."""
    if flat is not None and len(flat) == 3:
        h, w, c = flat
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return kernel.T


def _dense_to_keras(weight: np.ndarray, flat) -> np.ndarray:
    """PyTorch Linear weight (n, C*H*W) -> Keras Dense kernel (H*W*C, n)."""
    kernel = weight.T
    if flat is not None and len(flat) == 3:
        h, w, c = flat
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return kernel


def _copy(target: torch.Tensor, value: np.ndarray, where: str) -> None:
    if tuple(target.shape) != value.shape:
        raise ValueError(f"{where}: shape {value.shape} does not fit {tuple(target.shape)}; "
                         "build both models with the same configuration")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def keras_to_torch(keras_model: keras.Model, torch_model: nn.Module) -> nn.Module:
    """Copy every weight of ``keras_model`` into ``torch_model`` (same network, same config)."""
    for k, t, flat in _paired_layers(keras_model, torch_model):
        w = [v.numpy() for v in k.weights]
        if isinstance(t, (nn.Conv2d, nn.ConvTranspose2d)):   # HWIO -> OIHW; HW(out)(in) -> (in)(out)HW
            _copy(t.weight, w[0].transpose(3, 2, 0, 1), k.name)
            _copy(t.bias, w[1], k.name)
        elif isinstance(t, nn.BatchNorm2d):
            for target, value in zip((t.weight, t.bias, t.running_mean, t.running_var), w):
                _copy(target, value, k.name)
        else:
            _copy(t.weight, _dense_to_torch(w[0], flat), k.name)
            _copy(t.bias, w[1], k.name)
    return torch_model


def torch_to_keras(torch_model: nn.Module, keras_model: keras.Model) -> keras.Model:
    """Copy every weight of ``torch_model`` into ``keras_model`` (same network, same config)."""
    for k, t, flat in _paired_layers(keras_model, torch_model):
        if isinstance(t, (nn.Conv2d, nn.ConvTranspose2d)):   # OIHW -> HWIO
            values = [t.weight.detach().numpy().transpose(2, 3, 1, 0), t.bias.detach().numpy()]
        elif isinstance(t, nn.BatchNorm2d):
            values = [v.detach().numpy() for v in (t.weight, t.bias, t.running_mean, t.running_var)]
        else:
            values = [_dense_to_keras(t.weight.detach().numpy(), flat), t.bias.detach().numpy()]
        for variable, value in zip(k.weights, values):
            if tuple(variable.shape) != value.shape:
                raise ValueError(f"{k.name}: shape {value.shape} does not fit {tuple(variable.shape)}; "
                                 "build both models with the same configuration")
            variable.assign(value)
    return keras_model


def max_logit_difference(keras_model: keras.Model, torch_model: nn.Module, images) -> float:
    """Largest absolute difference between the two models' logits on ``images`` (inference mode).

    ``images``: float32 (N, H, W, C) channels last in [0, 1], as ``deconv_keras.prepare_images`` gives.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype != np.float32:
        raise ValueError(f"expected float32 images of shape (N, H, W, C) channels-last, got "
                         f"{x.dtype} {x.shape}: use deconv_keras.prepare_images(x)")
    keras_logits = np.asarray(keras_model(x, training=False))
    torch_model.eval()
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
    return float(np.abs(keras_logits - torch_logits).max())
