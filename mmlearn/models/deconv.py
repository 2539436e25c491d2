"""Part I's two networks in PyTorch: the article's ``ArticleNet`` and the formula's ``FormulaNet``.

The article writes its model as ``y = softmax(g_GC(p_AP(c_R(c_C(x)))))``: convolutions
``c_C``, transposed convolutions ``c_R``, adaptive pooling ``p_AP`` and a dense layer
``g_GC``. Its code builds something else, so this module holds both:

* :class:`ArticleNet`, the article's code as written: three (conv, transposed conv) stages
  that upsample 32 -> 64 -> 128 -> 256, then Flatten and one Dense layer. With 10 classes the
  Dense layer alone has 83,886,090 weights (256 * 256 * 128 inputs).
* :class:`FormulaNet`, the network the formula describes: strided convolutions down to a
  coarse grid (c_C), transposed convolutions back up to a finer one (c_R), adaptive average
  pooling (p_AP) and a dense layer (g_GC).

Both return *logits*; the article's ``Dense(activation="softmax")`` becomes softmax inside the
loss (``F.cross_entropy``), the same function computed more stably. The Keras twins live in
:mod:`mmlearn.models.deconv_keras` under the same names, with the functions that move weights between
the two. The layers are :mod:`mmlearn.blocks`' ``ConvBlock`` and ``DeconvBlock``, padded so
that every layer matches Keras' ``padding="same"`` exactly (symmetric padding
``(kernel - stride) / 2``), with Keras' BatchNorm epsilon (1e-3) and ``bn_momentum`` in Keras'
convention. The article keeps Keras' 0.99, so its running statistics need ~1,000 steps to
forget their initial values; FormulaNet uses 0.9, so that evaluation after a short run on CPU
uses settled statistics.

This module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from mmlearn.blocks import FORMULA_BN_MOMENTUM, ConvBlock, DeconvBlock
from mmlearn.config import batch_that_fits as batch_that_fits_memory
from mmlearn.inputs import check_batch, float_images
from mmlearn.operators import check_n_classes, check_widths


# --- input checks -----------------------------------------------------------------------------

def _check_batch(x, in_channels: int, size_multiple: int, image_size: int | None = None) -> None:
    """The networks' input check; the fix it names is this module's :func:`prepare_images`."""
    check_batch(x, in_channels, size_multiple, image_size, prepare="mmlearn.models.deconv.prepare_images(x)")


def prepare_images(images, in_channels: int = 3) -> torch.Tensor:
    """Images as the loaders give them -> a float32 (N, C, H, W) tensor in [0, 1].

    Accepts NumPy arrays or tensors, channels last (N, H, W, C), uint8 (0..255) or float
    (already in [0, 1]); grey (N, H, W) is accepted when ``in_channels == 1``.
    """
    x = images.detach().cpu().numpy() if torch.is_tensor(images) else images
    return torch.from_numpy(float_images(x, in_channels))   # (N, H, W, C) -> (N, C, H, W)


# --- the article's network ---------------------------------------------------------------------

class ArticleNet(nn.Module):
    """The article's code, layer for layer: (conv 3x3, transposed conv 4x4 / 2) x 3, Flatten, Dense.

    With the defaults the grid grows 32 -> 256 while nothing new enters the network, and the
    Dense layer sees 256 * 256 * 128 = 8,388,608 inputs per image. ``head="pool"`` replaces
    Flatten by global average pooling, to show that the 256x256 feature maps themselves, not
    only the Dense layer, make the network slow.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, image_size: int = 32,
                 widths=(32, 64, 128), head: str = "flatten"):
        super().__init__()
        self.n_classes = check_n_classes(n_classes)
        widths = check_widths(widths, "widths")
        if head not in ("flatten", "pool"):
            raise ValueError(f"head must be 'flatten' (the article) or 'pool', got {head!r}")
        self.in_channels, self.image_size = in_channels, image_size
        stages, c = [], in_channels
        for w in widths:
            stages += [ConvBlock(c, w, 3, 1),     # (B, c, S, S) -> (B, w, S, S)
                       DeconvBlock(w, w, 4, 2)]   # (B, w, S, S) -> (B, w, 2S, 2S)
            c = w
        self.features = nn.Sequential(*stages)
        out_size = image_size * 2 ** len(widths)
        if head == "flatten":   # (B, c, 256, 256) -> (B, c * 256 * 256)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * out_size * out_size, self.n_classes))
        else:                   # (B, c, 256, 256) -> (B, c)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, self.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, self.in_channels, 1, self.image_size)
        return self.head(self.features(x))


# --- the network the formula describes ----------------------------------------------------------

class FormulaNet(nn.Module):
    """``softmax(g_GC(p_AP(c_R(c_C(x)))))`` built sensibly; returns logits.

    * ``c_C``: one stride-2 :class:`ConvBlock` (4x4) per entry of ``widths``: 32 -> 16 -> 8 -> 4;
    * ``c_R``: one stride-2 :class:`DeconvBlock` per entry of ``up_widths``: 4 -> 8 -> 16;
    * ``p_AP``: adaptive average pooling to ``pool_size`` x ``pool_size``, whatever the grid;
    * ``g_GC``: a dense layer to ``n_classes`` logits.

    Input height and width must be multiples of ``2 ** len(widths)``.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, widths=(32, 64, 128),
                 up_widths=(64, 32), pool_size: int = 1):
        super().__init__()
        self.n_classes = check_n_classes(n_classes)
        widths, up_widths = check_widths(widths, "widths"), check_widths(up_widths, "up_widths")
        if not widths:
            raise ValueError("widths needs at least one stage: the encoder c_C")
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.in_channels, self.size_multiple = in_channels, 2 ** len(widths)
        down, c = [], in_channels
        for w in widths:
            down.append(ConvBlock(c, w, 4, 2, FORMULA_BN_MOMENTUM))      # (B, c, S, S) -> (B, w, S/2, S/2)
            c = w
        up = []
        for w in up_widths:
            # (B, c, S, S) -> (B, w, 2S, 2S)
            up.append(DeconvBlock(c, w, 4, 2, bn_momentum=FORMULA_BN_MOMENTUM))
            c = w
        self.c_C, self.c_R = nn.Sequential(*down), nn.Sequential(*up)
        self.p_AP = nn.AdaptiveAvgPool2d(pool_size)  # (B, c, S, S) -> (B, c, p, p)
        self.g_GC = nn.Sequential(nn.Flatten(), nn.Linear(c * pool_size * pool_size, self.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, self.in_channels, self.size_multiple)
        return self.g_GC(self.p_AP(self.c_R(self.c_C(x))))


# --- building, counting, timing --------------------------------------------------------------------

NETWORKS = ("article", "formula")


@dataclasses.dataclass(frozen=True)
class Config:
    """One of the two networks and its arguments (see the classes for what they mean).

    A field the chosen network does not take is ignored: ``up_widths`` and ``pool_size`` are
    FormulaNet's, ``head`` is ArticleNet's, and PyTorch's FormulaNet takes pictures of any size
    (a multiple of ``2 ** len(widths)``) where its Keras twin is built for ``image_size``.
    """

    network: str = "formula"                  # "article" or "formula"
    in_channels: int = 3
    n_classes: int = 10
    image_size: int = 32
    widths: tuple[int, ...] = (32, 64, 128)   # ArticleNet's stages; FormulaNet's c_C
    up_widths: tuple[int, ...] = (64, 32)     # FormulaNet's c_R
    pool_size: int = 1                        # FormulaNet's p_AP grid
    head: str = "flatten"                     # ArticleNet's head: "flatten" (the article) or "pool"

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; expected one of {', '.join(NETWORKS)}")


ARTICLE = Config("article")  # the article's code as written, for CIFAR-10's 10 classes (I.4, I.5)
FORMULA = Config("formula")  # the network Part I trains on CIFAR-10 (I.4, I.5, the scaling appendix)


def build(config: Config) -> nn.Module:
    """The network ``config`` describes; :func:`mmlearn.models.deconv_keras.build` builds its Keras twin."""
    if config.network == "article":
        return ArticleNet(config.in_channels, config.n_classes, config.image_size, config.widths, config.head)
    return FormulaNet(config.in_channels, config.n_classes, config.widths, config.up_widths, config.pool_size)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters counted the way Keras' ``model.summary()`` counts them.

    ``trainable``: weights and biases; ``non_trainable``: BatchNorm's running mean and
    variance (buffers in PyTorch, non-trainable weights in Keras); ``total``: both.
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(m.running_mean.numel() + m.running_var.numel()
                for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return {"trainable": trainable, "non_trainable": frozen + stats, "total": trainable + frozen + stats}


def activation_bytes(model: nn.Module, batch_size: int, image_size: int = 32, dtype_bytes: int = 4) -> int:
    """Bytes of all layer outputs of one forward pass on ``batch_size`` square images of
    ``image_size`` pixels (``model.in_channels`` channels).

    Training keeps roughly these alive for the backward pass. Every output grows linearly
    with the batch, so one image is run (in eval mode, leaving BatchNorm's statistics alone)
    and the sum is scaled by the batch size.
    """
    image = (model.in_channels, image_size, image_size)
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        total += output.numel() * dtype_bytes

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *image), device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total * batch_size


def step_memory_bytes(model: nn.Module, batch_size: int, image_size: int = 32) -> int:
    """About the memory of one Adam training step: the layer outputs kept for the backward
    pass (:func:`activation_bytes`) plus four float32 copies of the trainable parameters
    (weights, gradients and Adam's two moments). ArticleNet at batch 8: about 2.8 GB."""
    per_image = activation_bytes(model, 1, image_size)
    return batch_size * per_image + 4 * 4 * parameter_counts(model)["trainable"]


def batch_that_fits(model: nn.Module, batch_size: int, image_size: int = 32,
                    available: int | None = None) -> int:
    """``batch_size``, halved (with a one-line note) until :func:`step_memory_bytes` fits in the
    memory available to this process (``available`` bytes, if given)."""
    per_image = activation_bytes(model, 1, image_size)
    fixed = 4 * 4 * parameter_counts(model)["trainable"]
    return batch_that_fits_memory(batch_size, lambda b: b * per_image + fixed,
                                  f"a training step of {type(model).__name__}", available)


def train_step_seconds(model: nn.Module, batch_size: int, steps: int, image_size: int = 32,
                       lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Wall time of ``steps`` Adam training steps on random images, after one warm-up step."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    g = torch.Generator().manual_seed(seed)
    in_channels = model.in_channels
    x = torch.rand(batch_size, in_channels, image_size, image_size, generator=g)
    y = torch.randint(0, model.n_classes, (batch_size,), generator=g)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[1:]
