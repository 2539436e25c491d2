"""Text-to-image generation on easy-VQA shapes with a transposed-convolution decoder (PyTorch).

A caption such as "a red circle" names a colour and a shape; the decoder draws a 32 x 32
picture of it. Read top to bottom:

* :class:`TextCondition`: the caption as the frozen text tower reads it (mean-pooled
  all-MiniLM-L6-v2 features, ``TextEncoder.pooled_features``), projected to a small vector.
  Any sentence has such features, so the generator can be asked for captions it was never
  trained on ("a crimson round disc").
* :class:`Decoder`: (condition, latent z) -> Linear -> a 4 x 4 grid -> three of Part I's
  transposed-convolution blocks (:class:`mmlearn.blocks.DeconvBlock`), 4 -> 8 -> 16 -> 32
  pixels -> sigmoid.
* two ways to train it:

  - :class:`PixelRegressor`: the decoder with no latent, trained to reproduce every real
    picture of its caption with a mean-squared error. The caption does not say where the
    shape is, how big it is, or what the background tint is, so the loss is lowest for the
    *average* of all those pictures: a blurred blob.
  - :class:`ConditionalVAE`: an encoder reads the real picture and its caption and writes the
    rest (position, size, tint) into a small latent ``z``; the decoder draws from condition and
    ``z``. Trained on the evidence lower bound (reconstruction + KL to N(0, I)), so a ``z``
    gives one sharp, plausible picture instead of the mean of all of them. After a short
    training the codes of real pictures do not fill N(0, I): a ``z`` drawn from the prior
    often lands in a hole the decoder never saw. ``generate(text, z=codes[pick])`` decodes
    codes of real pictures instead (samples of the *aggregate posterior*): position, size and
    tint of a real picture, colour and shape of the caption.

Two judges that share nothing read colour and shape off any 32 x 32 picture:
:class:`ShapeClassifier`, a CNN trained on real pictures only and never used when training a
generator, and :func:`read_drawing`, fixed rules with no training at all. :func:`judge_scores`
scores pictures with a reading; :func:`pixel_distances` measures diversity and memorisation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmlearn.blocks import FORMULA_BN_MOMENTUM, ConvBlock, DeconvBlock
from mmlearn.data.shapes import COLORS, PALETTE, SHAPES
from mmlearn.inputs import check_array, to_float, to_uint8
from mmlearn.training import predict

IMAGE_SIZE = 32


# --- pictures in and out ---------------------------------------------------------------------

def image_batch(images) -> torch.Tensor:
    """uint8 (N, 32, 32, 3) channels-last pictures -> float32 (N, 3, 32, 32) in [0, 1]."""
    return to_float(torch.as_tensor(check_array(images, size=IMAGE_SIZE, what="pictures")))


def soften(images) -> np.ndarray:
    """uint8 (N, H, W, 3) pictures blurred by a 3 x 3 box (edges repeated): real pictures with
    edges as soft as a decoder's, to test a judge on the kind of picture it will score."""
    x = image_batch(images)                                 # checks the layout
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel_size=3, stride=1)
    return to_uint8(blurred)


def check_condition(color, shape, pictures=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour and shape indices as int64 tensors of equal length, in range (and, given
    ``pictures``, one pair per picture)."""
    color, shape = torch.as_tensor(color, dtype=torch.int64), torch.as_tensor(shape, dtype=torch.int64)
    if color.dim() != 1 or color.shape != shape.shape:
        raise ValueError(f"expected colour and shape indices as two 1-D arrays of equal length, got "
                         f"shapes {tuple(color.shape)} and {tuple(shape.shape)}")
    if len(color) == 0:
        raise ValueError("expected at least one caption (colour, shape), got none")
    if color.min() < 0 or color.max() >= len(COLORS) or shape.min() < 0 or shape.max() >= len(SHAPES):
        raise ValueError(f"colour indices must lie in 0..{len(COLORS) - 1} ({', '.join(COLORS)}) and "
                         f"shape indices in 0..{len(SHAPES) - 1} ({', '.join(SHAPES)})")
    if pictures is not None and len(pictures) != len(color):
        raise ValueError(f"expected one (colour, shape) per picture, got {len(pictures)} pictures "
                         f"and {len(color)} captions")
    return color, shape


def check_text(text, text_dim: int, pictures=None) -> torch.Tensor:
    """Caption features as a float32 (N, text_dim) tensor (and, given ``pictures``, one per picture)."""
    text = torch.as_tensor(text, dtype=torch.float32)
    if text.dim() != 2 or text.shape[1] != text_dim or len(text) == 0:
        raise ValueError(f"expected caption features of shape (N, {text_dim}) from the text tower "
                         f"(TextEncoder.pooled_features(captions)), got {tuple(text.shape)}")
    if pictures is not None and len(pictures) != len(text):
        raise ValueError(f"expected one caption per picture, got {len(pictures)} pictures and "
                         f"{len(text)} caption features")
    return text


# --- blocks ----------------------------------------------------------------------------------

class TextCondition(nn.Module):
    """Frozen text-tower features of a caption (B, text_dim) -> (B, dim).

    LayerNorm first: mean-pooled transformer features differ in scale from sentence to sentence,
    and the projection should see their direction, which is what the caption means.
    """

    def __init__(self, text_dim: int = 384, dim: int = 32):
        super().__init__()
        self.project = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, dim))
        self.text_dim, self.out_dim = text_dim, dim

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.project(text)


class Decoder(nn.Module):
    """(condition (B, c), z (B, z_dim)) -> pictures (B, 3, 32, 32) in [0, 1].

    The caption and ``z`` enter twice: through the linear layer that makes the 4 x 4 grid, and
    as constant extra channels at the input of every transposed convolution, so the late,
    fine layers that draw the edges still know which shape they are drawing.
    """

    def __init__(self, cond_dim: int, z_dim: int, width: int = 32):
        super().__init__()
        self.width, code_dim = width, cond_dim + z_dim
        self.fc = nn.Sequential(nn.Linear(code_dim, 4 * width * 4 * 4), nn.ReLU(inplace=True))
        m = FORMULA_BN_MOMENTUM
        self.up = nn.ModuleList([
            DeconvBlock(4 * width + code_dim, 2 * width, bn_momentum=m),  # (B, 4w + k, 4, 4) -> (B, 2w, 8, 8)
            DeconvBlock(2 * width + code_dim, width, bn_momentum=m),      # -> (B, w, 16, 16)
            DeconvBlock(width + code_dim, 3, batch_norm=False, activation=False)])  # -> (B, 3, 32, 32)

    def forward(self, condition: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        code = torch.cat([condition, z], dim=-1)                # (B, k = c + z_dim)
        h = self.fc(code).view(-1, 4 * self.width, 4, 4)        # (B, k) -> (B, 4w, 4, 4)
        for block in self.up:
            planes = code[:, :, None, None].expand(-1, -1, *h.shape[2:])   # (B, k, H, W)
            h = block(torch.cat([h, planes], dim=1))
        return torch.sigmoid(h)                                 # -> (B, 3, 32, 32)


class Encoder(nn.Module):
    """(pictures (B, 3, 32, 32), condition (B, c)) -> mean and log-variance of z, (B, z_dim) each."""

    def __init__(self, cond_dim: int, z_dim: int, width: int = 16):
        super().__init__()
        m = FORMULA_BN_MOMENTUM
        self.down = nn.Sequential(
            ConvBlock(3, width, 4, stride=2, bn_momentum=m),              # (B, 3, 32, 32) -> (B, w, 16, 16)
            ConvBlock(width, 2 * width, 4, stride=2, bn_momentum=m),      # -> (B, 2w, 8, 8)
            ConvBlock(2 * width, 4 * width, 4, stride=2, bn_momentum=m),  # -> (B, 4w, 4, 4)
            nn.Flatten())                                              # -> (B, 64w)
        self.out = nn.Linear(64 * width + cond_dim, 2 * z_dim)

    def forward(self, x: torch.Tensor, condition: torch.Tensor):
        stats = self.out(torch.cat([self.down(x), condition], dim=-1))  # (B, 2 z_dim)
        return stats.chunk(2, dim=-1)


# --- the generators --------------------------------------------------------------------------

class PixelRegressor(nn.Module):
    """Caption -> picture, nothing else: the decoder with an empty latent, trained with MSE."""

    def __init__(self, text_dim: int = 384, cond_dim: int = 32, width: int = 32):
        super().__init__()
        self.condition = TextCondition(text_dim, cond_dim)
        self.decoder = Decoder(cond_dim, 0, width)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        c = self.condition(text)
        return self.decoder(c, c.new_zeros(len(c), 0))

    @torch.no_grad()
    def generate(self, text, seed: int = 0) -> np.ndarray:
        """uint8 (N, 32, 32, 3) pictures of the captions whose text features (N, text_dim) are
        given (``seed`` changes nothing: there is no latent)."""
        self.eval()
        text = check_text(text, self.condition.text_dim)
        return to_uint8(self(text.to(next(self.parameters()).device)))


class ConditionalVAE(nn.Module):
    """A conditional variational auto-encoder: caption + latent z -> picture.

    ``forward(images, text)`` encodes the real pictures, samples z with the
    reparameterisation trick and returns (reconstruction, mean, log-variance).
    """

    def __init__(self, text_dim: int = 384, cond_dim: int = 32, z_dim: int = 8, width: int = 32,
                 beta: float = 1.0):
        super().__init__()
        self.z_dim, self.beta = z_dim, beta
        self.condition = TextCondition(text_dim, cond_dim)
        self.encoder = Encoder(cond_dim, z_dim, width // 2)
        self.decoder = Decoder(cond_dim, z_dim, width)

    def posterior(self, x: torch.Tensor, text: torch.Tensor):
        """Mean and log-variance of q(z | picture, caption), (B, z_dim) each."""
        return self.encoder(x, self.condition(text))

    def forward(self, x: torch.Tensor, text: torch.Tensor):
        c = self.condition(text)
        mean, log_var = self.encoder(x, c)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        return self.decoder(c, z), mean, log_var

    def codes(self, images, text, batch_size: int = 500) -> torch.Tensor:
        """Posterior means (N, z_dim) of real uint8 (N, 32, 32, 3) pictures and their captions'
        text features (N, text_dim)."""
        text = check_text(text, self.condition.text_dim, pictures=images)
        means, _ = predict(self, image_batch(images), text, batch_size=batch_size, forward=self.posterior)
        return means

    @torch.no_grad()
    def generate(self, text, z: torch.Tensor | None = None, seed: int = 0) -> np.ndarray:
        """uint8 (N, 32, 32, 3) pictures of the captions whose text features (N, text_dim) are
        given, decoded from the latents ``z`` (N, z_dim), e.g. codes of real pictures from
        :meth:`codes`; without ``z``, latents are drawn from N(0, I) with ``seed``."""
        self.eval()
        text = check_text(text, self.condition.text_dim)
        if z is None:
            z = torch.randn(len(text), self.z_dim, generator=torch.Generator().manual_seed(seed))
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.shape != (len(text), self.z_dim):
            raise ValueError(f"expected one latent per caption, z of shape ({len(text)}, {self.z_dim}) "
                             f"(e.g. codes[pick] from model.codes(...)), got {tuple(z.shape)}")
        device = next(self.parameters()).device
        return to_uint8(self.decoder(self.condition(text.to(device)), z.to(device)))


# --- the judges ------------------------------------------------------------------------------

class ShapeClassifier(nn.Module):
    """Reads colour and shape off a 32 x 32 picture: (B, 3, 32, 32) -> (colour logits (B, 8),
    shape logits (B, 3)). Trained on real pictures only; it judges the generators."""

    def __init__(self, width: int = 16):
        super().__init__()
        m = FORMULA_BN_MOMENTUM
        self.features = nn.Sequential(
            ConvBlock(3, width, bn_momentum=m),                       # (B, 3, 32, 32) -> (B, w, 32, 32)
            ConvBlock(width, 2 * width, 4, stride=2, bn_momentum=m),      # -> (B, 2w, 16, 16)
            ConvBlock(2 * width, 2 * width, 4, stride=2, bn_momentum=m),  # -> (B, 2w, 8, 8)
            nn.AdaptiveMaxPool2d(1), nn.Flatten())                    # -> (B, 2w)
        self.color = nn.Linear(2 * width, len(COLORS))
        self.shape = nn.Linear(2 * width, len(SHAPES))

    def forward(self, x: torch.Tensor):
        h = self.features(x)
        return self.color(h), self.shape(h)

    def read(self, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Colour and shape indices, int64 (N,) each, that this classifier reads off uint8
        (N, 32, 32, 3) pictures."""
        color_logits, shape_logits = predict(self, image_batch(images), batch_size=batch_size)
        return color_logits.argmax(1).numpy(), shape_logits.argmax(1).numpy()


MIN_CONTRAST = 0.1  # RGB distance (0..sqrt 3) below which a picture shows no shape at all
TEMPLATE_BLURS = (1, 3, 5)  # box-blur widths (px) the templates are compared at
BOX_LEVELS = (0.25, 0.5)    # coverage levels whose bounding boxes the templates are fitted to


def shape_templates(top, bottom, left, right, size: int = IMAGE_SIZE, supersample: int = 4) -> torch.Tensor:
    """Coverage (N, 3, size, size) of the ideal circle, rectangle and upright triangle (easy-VQA
    draws every triangle apex up) filling each bounding box; edges in pixels, ``bottom`` and
    ``right`` exclusive. Each pixel is sampled ``supersample`` x ``supersample`` times."""
    steps = (torch.arange(size * supersample, dtype=torch.float64) + 0.5) / supersample
    v, u = steps.view(1, -1, 1), steps.view(1, 1, -1)                    # rows, columns
    top, bottom, left, right = (torch.as_tensor(e, dtype=torch.float64).view(-1, 1, 1)
                                for e in (top, bottom, left, right))
    cy, cx, half_h, half_w = (top + bottom) / 2, (left + right) / 2, (bottom - top) / 2, (right - left) / 2
    in_box = (v >= top) & (v <= bottom) & (u >= left) & (u <= right)
    circle = ((v - cy) / half_h) ** 2 + ((u - cx) / half_w) ** 2 <= 1
    triangle = in_box & ((u - cx).abs() <= half_w * (v - top) / (2 * half_h))
    masks = torch.stack([circle, in_box, triangle], dim=1).double()      # SHAPES order
    return F.avg_pool2d(masks, supersample)                               # (N, 3, size, size)


def read_drawing(images) -> tuple[np.ndarray, np.ndarray]:
    """The rule judge: colour and shape of the one shape in uint8 (N, 32, 32, 3) pictures, read
    by fixed rules that nothing was trained on (the tolerant cousin of ``shapes.read_facts``,
    which needs easy-VQA's exact palette colours and sharp edges):

    * background: the median colour of the picture's border;
    * colour: the palette colour nearest to the mean of the shape's core, the pixels at least
      0.8 of the farthest pixel's distance from the background;
    * coverage: each pixel read as a mix ``a * colour + (1 - a) * background``, ``a`` in [0, 1];
    * shape: the ideal circle, rectangle or triangle (:func:`shape_templates`) closest to the
      coverage in squared error, fitted to the bounding box of the pixels with ``a`` at least
      each of :data:`BOX_LEVELS` and blurred by each of :data:`TEMPLATE_BLURS`. Blur and a lower
      level are part of the rule so that a soft edge or a faint tip does not change the shape.

    A picture whose farthest pixel lies within :data:`MIN_CONTRAST` of the background shows no
    shape: colour and shape are read as -1, which matches no caption.
    """
    x = image_batch(images).permute(0, 2, 3, 1).double().numpy()         # (N, H, W, 3) in [0, 1]
    border = np.concatenate([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], axis=1)
    background = np.median(border, axis=1)[:, None, None]                 # (N, 1, 1, 3)
    away = x - background                                                 # (N, H, W, 3)
    distance = np.linalg.norm(away, axis=-1)                              # (N, H, W)
    peak = distance.max(axis=(1, 2))
    core = distance >= 0.8 * peak[:, None, None]
    core_colour = (x * core[..., None]).sum(axis=(1, 2)) / core.sum(axis=(1, 2))[:, None]
    palette = np.array(list(PALETTE.values()), dtype=np.float64) / 255    # (8, 3)
    colour = ((core_colour[:, None] - palette) ** 2).sum(-1).argmin(1)
    ink = palette[colour][:, None, None] - background                     # (N, 1, 1, 3)
    coverage = np.clip((away * ink).sum(-1) / np.maximum((ink ** 2).sum(-1), 1e-6), 0, 1)
    blank = (peak < MIN_CONTRAST) | ~(coverage >= 0.5).any(axis=(1, 2))
    target = torch.as_tensor(coverage)[:, None]                           # (N, 1, H, W)
    errors = []                                                           # per box and blur: (N, 3)
    for level in BOX_LEVELS:
        inside = coverage >= level
        inside[blank, IMAGE_SIZE // 2, IMAGE_SIZE // 2] = True            # any box; read as -1 below
        rows, cols = inside.any(2), inside.any(1)                         # (N, H), (N, W)
        top, left = rows.argmax(1), cols.argmax(1)
        bottom, right = rows.shape[1] - rows[:, ::-1].argmax(1), cols.shape[1] - cols[:, ::-1].argmax(1)
        templates = shape_templates(top, bottom, left, right)             # (N, 3, H, W)
        for k in TEMPLATE_BLURS:
            blurred = F.avg_pool2d(F.pad(templates, (k // 2,) * 4, mode="replicate"), k, stride=1)
            errors.append(((blurred - target) ** 2).sum((2, 3)))
    shape = torch.stack(errors).min(0).values.argmin(1).numpy()
    colour[blank], shape[blank] = -1, -1
    return colour.astype(np.int64), shape.astype(np.int64)


def judge_scores(reading, color, shape) -> dict[str, float]:
    """Share of pictures whose colour, shape, and both, a judge's ``reading`` (the pair of index
    arrays from :meth:`ShapeClassifier.read` or :func:`read_drawing`) gets as ``color``/``shape``."""
    color, shape = (t.numpy() for t in check_condition(color, shape, pictures=reading[0]))
    color_ok, shape_ok = reading[0] == color, reading[1] == shape
    return {"color": float(color_ok.mean()), "shape": float(shape_ok.mean()),
            "both": float((color_ok & shape_ok).mean())}


def verdicts(classifier: ShapeClassifier, images, color, shape) -> dict[str, float]:
    """Both judges on pictures meant to show ``color``/``shape``: the classifier's colour, shape
    and both, the rules' both, and the share that *both* judges read as the caption."""
    learned, rules = classifier.read(images), read_drawing(images)
    by_classifier, by_rules = judge_scores(learned, color, shape), judge_scores(rules, color, shape)
    agree = ((learned[0] == rules[0]) & (learned[1] == rules[1]) & (learned[0] == np.asarray(color))
             & (learned[1] == np.asarray(shape)))
    return {"colour": by_classifier["color"], "shape": by_classifier["shape"],
            "both (classifier)": by_classifier["both"], "both (rules)": by_rules["both"],
            "both (both judges)": float(agree.mean())}


# --- diversity and memorisation --------------------------------------------------------------

def pixel_distances(a, b, batch_size: int = 1000) -> torch.Tensor:
    """Root-mean-square pixel distance (0..1) between every picture of ``a`` (N, 32, 32, 3) and
    every picture of ``b`` (M, 32, 32, 3), both uint8: a float32 (N, M) matrix."""
    fa = image_batch(a).flatten(1)                                        # (N, 3072)
    fb = image_batch(b).flatten(1)
    rows = [torch.cdist(fa[i:i + batch_size], fb) for i in range(0, len(fa), batch_size)]
    return torch.cat(rows) / fa.shape[1] ** 0.5


# --- the losses, one per model, for training.fit -------------------------------------------------

def regression_loss(model: PixelRegressor, batch) -> torch.Tensor:
    """(uint8 pictures, caption features) batches: mean squared error between the drawing and the
    real picture of the same caption."""
    images, text = batch
    return F.mse_loss(model(text), image_batch(images))


def elbo_loss(model: ConditionalVAE, batch) -> torch.Tensor:
    """(uint8 pictures, caption features) batches: the negative evidence lower bound per picture,
    binary cross-entropy summed over pixels plus ``beta`` times KL(q(z | x, caption) || N(0, I))."""
    images, text = batch
    x = image_batch(images)
    recon, mean, log_var = model(x, text)
    reconstruction = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
    kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum() / len(x)
    return reconstruction + getattr(model, "module", model).beta * kl   # .module: under torchrun


def judge_loss(model: ShapeClassifier, batch) -> torch.Tensor:
    """(uint8 pictures, colour, shape) batches: the two heads' cross-entropies, added."""
    images, color, shape = batch
    color_logits, shape_logits = model(image_batch(images))
    return F.cross_entropy(color_logits, color) + F.cross_entropy(shape_logits, shape)


# --- the builder -----------------------------------------------------------------------------

GENERATORS = ("vae", "regression")


@dataclasses.dataclass(frozen=True)
class Config:
    """A caption-to-picture generator: ``kind`` "vae" (:class:`ConditionalVAE`) or "regression"
    (:class:`PixelRegressor`, which has no latent and ignores ``z_dim`` and ``beta``)."""

    kind: str = "vae"
    text_dim: int = 384        # width of the text tower's features (all-MiniLM-L6-v2)
    cond_dim: int = 32
    z_dim: int = 8
    width: int = 32
    beta: float = 1.0

    def __post_init__(self):
        if self.kind not in GENERATORS:
            raise ValueError(f"unknown generator kind {self.kind!r}; expected one of {', '.join(GENERATORS)}")


REGRESSION = Config(kind="regression")      # chapter II.5b's first try
CVAE = Config(kind="vae", z_dim=8, beta=0.5)  # chapter II.5b's generator


def build(config: Config) -> nn.Module:
    """A fresh caption-to-picture generator."""
    if config.kind == "regression":
        return PixelRegressor(config.text_dim, config.cond_dim, config.width)
    return ConditionalVAE(config.text_dim, config.cond_dim, config.z_dim, config.width, config.beta)


def caption_grid(n_per_caption: int, colors=range(len(COLORS)), shapes=range(len(SHAPES))):
    """(colour, shape) index arrays covering every requested caption ``n_per_caption`` times,
    caption by caption: for generating a grid or a balanced test set."""
    if n_per_caption < 1:
        raise ValueError(f"n_per_caption must be at least 1, got {n_per_caption}")
    pairs = [(c, s) for c in colors for s in shapes]
    color = np.repeat([c for c, _ in pairs], n_per_caption)
    shape = np.repeat([s for _, s in pairs], n_per_caption)
    return color.astype(np.int64), shape.astype(np.int64)
