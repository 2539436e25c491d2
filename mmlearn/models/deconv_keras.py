"""Part I's two networks in TensorFlow/Keras: the article's ``ArticleNet`` and the formula's ``FormulaNet``.

The same two networks as :mod:`mmlearn.models.deconv`, under the same names and with the same
leading arguments (see there for why there are two), and the functions that move trained
weights between the twins (:func:`keras_to_torch`, :func:`torch_to_keras`,
:func:`max_logit_difference`):

* ``ArticleNet``: the article's code as written, (Conv2D 3x3, Conv2DTranspose 4x4 / 2) x 3
  growing the grid 32 -> 256, then Flatten and Dense: 84,325,418 parameters for 10 classes,
  83,886,090 of them in the Dense layer;
* ``FormulaNet``: strided Conv2D encoder (c_C) -> Conv2DTranspose decoder (c_R) ->
  adaptive average pooling (p_AP) -> Dense (g_GC).

Both return logits: compile with ``SparseCategoricalCrossentropy(from_logits=True)``, which is
the article's ``Dense(activation="softmax")`` + cross-entropy computed more stably.
``bn_momentum`` is Keras' BatchNormalization momentum (see :mod:`mmlearn.blocks`). Images are
channels last, ``(N, H, W, C)`` float32 in [0, 1] (:func:`prepare_images`).

Both frameworks build the same layers in the same order, so copying weights is a walk over
both models' weighted layers in step. What changes on the way is only layout:

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

Importing this module imports TensorFlow; :mod:`mmlearn.models.deconv` does not.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from mmlearn.blocks import ARTICLE_BN_MOMENTUM, FORMULA_BN_MOMENTUM
from mmlearn.config import batch_that_fits as batch_that_fits_memory, configure_tensorflow
from mmlearn.models.deconv import ARTICLE, FORMULA, Config  # the twins share their configurations
from mmlearn.inputs import check_array, check_image_size as _check_image_size, float_images
from mmlearn.operators import check_n_classes, check_widths, same_padding

tf = configure_tensorflow()
keras = tf.keras
layers = keras.layers


# --- blocks --------------------------------------------------------------------------------

def conv_block(x, filters: int, kernel_size: int = 3, stride: int = 1,
               bn_momentum: float = ARTICLE_BN_MOMENTUM, name: str | None = None):
    """Conv2D -> BatchNormalization -> ReLU with ``"same"`` padding.

    ``(B, H, W, C) -> (B, H / stride, W / stride, filters)``.
    """
    same_padding(kernel_size, stride)  # refuses the asymmetric cases PyTorch cannot mirror
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding="same",
                      name=name and f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=name and f"{name}_bn")(x)
    return layers.ReLU(name=name and f"{name}_relu")(x)


def deconv_block(x, filters: int, kernel_size: int = 4, stride: int = 2, batch_norm: bool = True,
                 activation: bool = True, bn_momentum: float = ARTICLE_BN_MOMENTUM,
                 name: str | None = None, mirrored: bool = True):
    """Conv2DTranspose (反卷积) -> BatchNormalization -> ReLU: upsample by ``stride``.

    ``(B, H, W, C) -> (B, H * stride, W * stride, filters)``. ``mirrored=False`` allows the
    asymmetric ``"same"`` padding (4x4 at stride 1) that a PyTorch twin cannot reproduce.
    """
    if mirrored:
        same_padding(kernel_size, stride)
    x = layers.Conv2DTranspose(filters, kernel_size, strides=stride, padding="same",
                               name=name and f"{name}_deconv")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=bn_momentum, name=name and f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(name=name and f"{name}_relu")(x)
    return x


# --- input checks -----------------------------------------------------------------------------

def prepare_images(images, in_channels: int = 3) -> np.ndarray:
    """Images as the loaders give them -> float32 (N, H, W, C) in [0, 1], channels last.

    Accepts uint8 (0..255) or float (already in [0, 1]); grey (N, H, W) when ``in_channels == 1``.
    """
    return float_images(images, in_channels, channels_first=False)


# --- the article's network ---------------------------------------------------------------------

def ArticleNet(in_channels: int = 3, n_classes: int = 10, image_size: int = 32,
               widths=(32, 64, 128), head: str = "flatten", up_stride: int = 2,
               bn_momentum: float = ARTICLE_BN_MOMENTUM) -> keras.Model:
    """The article's code, layer for layer; ``head="pool"`` swaps Flatten for global pooling.

    ``up_stride=1`` (Keras only, with ``head="pool"``) is the control of chapter I.4: the very
    same layers and parameters, but the transposed convolutions keep the grid at its input size
    instead of doubling it, so the network sees exactly what the upsampled one sees, minus the
    upsampling. ``bn_momentum``: the article keeps Keras' 0.99, whose running statistics need
    about a thousand steps to settle; a short run wants 0.9.
    """
    n_classes = check_n_classes(n_classes)
    widths = check_widths(widths, "widths")
    if head not in ("flatten", "pool"):
        raise ValueError(f"head must be 'flatten' (the article) or 'pool', got {head!r}")
    if up_stride not in (1, 2) or (up_stride == 1 and head != "pool"):
        raise ValueError(f"up_stride must be 2 (the article) or 1 with head='pool' (the control "
                         f"that keeps the grid), got up_stride={up_stride!r}, head={head!r}")
    inputs = keras.Input(shape=(_check_image_size(image_size, 1), image_size, in_channels))
    x = inputs
    for i, w in enumerate(widths, 1):
        x = conv_block(x, w, 3, 1, bn_momentum, name=f"stage{i}")   # (B, S, S, c) -> (B, S, S, w)
        # (B, S, S, w) -> (B, 2S, 2S, w), or (B, S, S, w) at up_stride=1
        x = deconv_block(x, w, 4, up_stride, bn_momentum=bn_momentum, name=f"stage{i}_up",
                         mirrored=up_stride == 2)
    if head == "flatten":
        x = layers.Flatten(name="flatten")(x)               # (B, 256, 256, c) -> (B, 256 * 256 * c)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)   # (B, 256, 256, c) -> (B, c)
    logits = layers.Dense(n_classes, name="dense")(x)
    return keras.Model(inputs, logits, name="ArticleNet")


# --- the network the formula describes ----------------------------------------------------------

def FormulaNet(in_channels: int = 3, n_classes: int = 10, widths=(32, 64, 128), up_widths=(64, 32),
               pool_size: int = 1, image_size: int = 32) -> keras.Model:
    """``softmax(g_GC(p_AP(c_R(c_C(x)))))`` built sensibly; returns logits.

    ``widths``: one stride-2 4x4 conv block per entry (c_C); ``up_widths``: one stride-2
    transposed-conv block per entry (c_R); then adaptive average pooling to ``pool_size`` x
    ``pool_size`` (p_AP) and a Dense layer (g_GC).
    """
    n_classes = check_n_classes(n_classes)
    widths, up_widths = check_widths(widths, "widths"), check_widths(up_widths, "up_widths")
    if not widths:
        raise ValueError("widths needs at least one stage: the encoder c_C")
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    size = _check_image_size(image_size, 2 ** len(widths))
    inputs = keras.Input(shape=(size, size, in_channels))
    x = inputs
    for i, w in enumerate(widths, 1):
        # (B, S, S, c) -> (B, S/2, S/2, w)
        x = conv_block(x, w, 4, 2, FORMULA_BN_MOMENTUM, name=f"c_C{i}")
    for i, w in enumerate(up_widths, 1):
        # (B, S, S, c) -> (B, 2S, 2S, w)
        x = deconv_block(x, w, 4, 2, bn_momentum=FORMULA_BN_MOMENTUM, name=f"c_R{i}")
    # p_AP: the grid is fixed by image_size, so adaptive pooling is average pooling over
    # (grid / pool_size)-sized windows. (Keras 3.15's AdaptiveAveragePooling2D computes a
    # 17-pixel window for 16 -> 1 when traced for training, and fails.)
    grid = size // 2 ** len(widths) * 2 ** len(up_widths)
    if grid % pool_size:
        raise ValueError(f"pool_size must divide the {grid}x{grid} grid after c_R, got {pool_size}")
    x = layers.AveragePooling2D(grid // pool_size, name="p_AP")(x)   # (B, S, S, c) -> (B, p, p, c)
    x = layers.Flatten(name="flatten")(x)
    logits = layers.Dense(n_classes, name="g_GC")(x)
    return keras.Model(inputs, logits, name="FormulaNet")


# --- building, counting, timing --------------------------------------------------------------------

def build(config: Config) -> keras.Model:
    """The Keras twin of what :func:`mmlearn.models.deconv.build` makes of ``config``."""
    if config.network == "article":
        return ArticleNet(config.in_channels, config.n_classes, config.image_size, config.widths, config.head)
    return FormulaNet(config.in_channels, config.n_classes, config.widths, config.up_widths, config.pool_size,
                      config.image_size)


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """``trainable`` weights, ``non_trainable`` ones (BatchNorm's moving mean and variance), ``total``."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


def activation_bytes(model: keras.Model, batch_size: int, dtype_bytes: int = 4) -> int:
    """Bytes of all layer outputs of one forward pass at ``batch_size`` (the input excluded)."""
    return batch_size * dtype_bytes * sum(math.prod(layer.output.shape[1:]) for layer in model.layers
                                          if not isinstance(layer, layers.InputLayer))


def step_memory_bytes(model: keras.Model, batch_size: int) -> int:
    """About the memory of one Adam training step: the layer outputs kept for the backward
    pass (:func:`activation_bytes`) plus four float32 copies of the trainable parameters
    (weights, gradients and Adam's two moments). ArticleNet at batch 8: about 2.8 GB."""
    return activation_bytes(model, batch_size) + 4 * 4 * parameter_counts(model)["trainable"]


def batch_that_fits(model: keras.Model, batch_size: int, available: int | None = None) -> int:
    """``batch_size``, halved (with a one-line note) until :func:`step_memory_bytes` fits in the
    memory available to this process (``available`` bytes, if given)."""
    return batch_that_fits_memory(batch_size, lambda b: step_memory_bytes(model, b),
                                  f"a training step of {model.name}", available)


def compile_classifier(model: keras.Model, lr: float = 1e-3) -> keras.Model:
    """Adam + cross-entropy on logits + accuracy: the article's ``compile`` for a logits model."""
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train_steps(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int,
                seed: int = 0) -> keras.Model:
    """``steps`` Adam steps (:func:`compile_classifier`) on shuffled batches of ``(x, y)``, one
    epoch's shuffle after another. ``seed`` fixes the batch order (seed the initial weights with
    ``mm.seed_everything`` before building the model). Returns the trained ``model``."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    if len(x) != len(y) or len(x) < batch_size:
        raise ValueError(f"need as many labels as images and at least one batch: got {len(x)} "
                         f"images, {len(y)} labels, batch_size {batch_size}")
    rng = np.random.default_rng(seed)
    if not model.compiled:
        compile_classifier(model)
    per_epoch = len(x) // batch_size
    order = np.concatenate([rng.permutation(len(x))[:per_epoch * batch_size]
                            for _ in range(-(-steps // per_epoch))])
    for step in range(steps):
        rows = order[step * batch_size:(step + 1) * batch_size]
        model.train_on_batch(x[rows], y[rows])
    return model


def train_step_seconds(model: keras.Model, batch_size: int, steps: int, seed: int = 0) -> list[float]:
    """Wall time of ``steps`` training steps on random images, after one warm-up step (which
    also traces the graph). Compiles ``model`` with :func:`compile_classifier` if needed."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, *model.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], batch_size)
    if not model.compiled:
        compile_classifier(model)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return times[1:]


# --- weights from and to the PyTorch twin ----------------------------------------------------

_PAIRS = ((layers.Conv2DTranspose, nn.ConvTranspose2d),   # before Conv2D: it subclasses it
          (layers.Conv2D, nn.Conv2d),
          (layers.BatchNormalization, nn.BatchNorm2d),
          (layers.Dense, nn.Linear))


def _paired_layers(keras_model: keras.Model, torch_model: nn.Module):
    """[(keras_layer, torch_module, flatten_hwc or None)] in model order, after checking they match."""
    if not isinstance(keras_model, keras.Model) or not isinstance(torch_model, nn.Module):
        raise TypeError(f"expected a Keras model and a PyTorch module from mmlearn.models.deconv_keras / "
                        f"deconv, got {type(keras_model).__name__} and {type(torch_model).__name__}")
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
    x = check_array(np.asarray(images), channels=None, dtypes=("float32",),
                    prepare="mmlearn.models.deconv_keras.prepare_images(x)")
    keras_logits = np.asarray(keras_model(x, training=False))
    torch_model.eval()
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
    return float(np.abs(keras_logits - torch_logits).max())
