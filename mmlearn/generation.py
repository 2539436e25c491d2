"""Text-to-image generation on easy-VQA shapes with a transposed-convolution decoder (PyTorch).

A caption such as "a red circle" names a colour and a shape; the decoder draws a 32 x 32
picture of it. Three pieces, read top to bottom:

* :class:`Condition`: a learned embedding of the caption's colour word and shape word. The
  caption is a fixed template, so two table look-ups carry all it says, exactly and for free.
* :class:`Decoder`: (condition, latent z) -> Linear -> a 4 x 4 grid -> three of Part I's
  transposed-convolution blocks (:class:`mmlearn.deconv_torch.DeconvBlock`), 4 -> 8 -> 16 -> 32
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
    often lands in a hole the decoder never saw. ``generate(..., codes=...)`` draws ``z``
    among the codes of real pictures instead (the *aggregate posterior*): position, size and
    tint of a real picture, colour and shape of the caption.

:class:`ShapeClassifier` is the judge: a separate CNN trained on real pictures only, never
used when training a generator, that reads colour and shape off any 32 x 32 picture.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmlearn.deconv_torch import FORMULA_BN_MOMENTUM, ConvBlock, DeconvBlock
from mmlearn.shapes import COLORS, SHAPES

IMAGE_SIZE = 32


# --- pictures in and out ---------------------------------------------------------------------

def image_batch(images) -> torch.Tensor:
    """uint8 (N, 32, 32, 3) channels-last pictures -> float32 (N, 3, 32, 32) in [0, 1]."""
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        hint = ": transpose with x.transpose(0, 2, 3, 1)" if len(shape) == 4 and shape[1] == 3 else ""
        if len(shape) == 4 and shape[1:3] == (2 * IMAGE_SIZE, 2 * IMAGE_SIZE):
            hint = ": shrink 64 px pictures with mmlearn.shapes.downsample(x, 2)"
        raise ValueError(f"expected pictures of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) "
                         f"channels-last uint8, got {shape}{hint}")
    if images.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"expected uint8 pictures (0-255), got dtype {images.dtype}")
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    return x.permute(0, 3, 1, 2).float() / 255.0            # (N, 32, 32, 3) -> (N, 3, 32, 32)


def soften(images) -> np.ndarray:
    """uint8 (N, H, W, 3) pictures blurred by a 3 x 3 box (edges repeated): the judge is also
    trained on these, so that a slightly soft edge does not change its verdict."""
    x = image_batch(images)                                 # checks the layout
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel_size=3, stride=1)
    return to_uint8(blurred)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3), ready for ``plots.image_grid``."""
    return (x.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


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


def parse_caption(caption: str) -> tuple[int, int]:
    """(colour index, shape index) named by a caption such as "a red circle"."""
    words = caption.lower().replace(",", " ").split()
    colors = [w for w in words if w in COLORS]
    shapes = [w for w in words if w in SHAPES]
    if len(colors) != 1 or len(shapes) != 1:
        raise ValueError(f"expected a caption naming one colour ({', '.join(COLORS)}) and one shape "
                         f"({', '.join(SHAPES)}), e.g. 'a red circle'; got {caption!r}")
    return COLORS.index(colors[0]), SHAPES.index(shapes[0])


# --- blocks ----------------------------------------------------------------------------------

class Condition(nn.Module):
    """(colour (B,), shape (B,)) -> (B, 2 * dim): the two word embeddings side by side."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.color = nn.Embedding(len(COLORS), dim)
        self.shape = nn.Embedding(len(SHAPES), dim)
        self.out_dim = 2 * dim

    def forward(self, color: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.color(color), self.shape(shape)], dim=-1)


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

    def __init__(self, embed_dim: int = 16, width: int = 32):
        super().__init__()
        self.condition = Condition(embed_dim)
        self.decoder = Decoder(self.condition.out_dim, 0, width)

    def forward(self, color: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        c = self.condition(color, shape)
        return self.decoder(c, c.new_zeros(len(c), 0))

    def loss(self, batch) -> torch.Tensor:
        """Mean squared error between the drawing and the real picture of the same caption."""
        images, color, shape = batch
        return F.mse_loss(self(color, shape), image_batch(images))

    @torch.no_grad()
    def generate(self, color, shape, seed: int = 0) -> np.ndarray:
        """uint8 (N, 32, 32, 3) pictures of the captions (``seed`` changes nothing: no latent)."""
        self.eval()
        color, shape = check_condition(color, shape)
        return to_uint8(self(color, shape))


class ConditionalVAE(nn.Module):
    """A conditional variational auto-encoder: caption + latent z -> picture.

    ``forward(images, color, shape)`` encodes the real pictures, samples z with the
    reparameterisation trick and returns (reconstruction, mean, log-variance).
    """

    def __init__(self, embed_dim: int = 16, z_dim: int = 8, width: int = 32, beta: float = 1.0):
        super().__init__()
        self.z_dim, self.beta = z_dim, beta
        self.condition = Condition(embed_dim)
        self.encoder = Encoder(self.condition.out_dim, z_dim, width // 2)
        self.decoder = Decoder(self.condition.out_dim, z_dim, width)

    def forward(self, x: torch.Tensor, color: torch.Tensor, shape: torch.Tensor):
        c = self.condition(color, shape)
        mean, log_var = self.encoder(x, c)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        return self.decoder(c, z), mean, log_var

    def loss(self, batch) -> torch.Tensor:
        """Negative evidence lower bound per picture: binary cross-entropy summed over pixels
        plus ``beta`` times KL(q(z | x, caption) || N(0, I))."""
        images, color, shape = batch
        x = image_batch(images)
        recon, mean, log_var = self(x, color, shape)
        reconstruction = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
        kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum() / len(x)
        return reconstruction + self.beta * kl

    @torch.no_grad()
    def codes(self, images, color, shape, batch_size: int = 500) -> torch.Tensor:
        """Posterior means (N, z_dim) of real uint8 (N, 32, 32, 3) pictures and their captions."""
        self.eval()
        color, shape = check_condition(color, shape, pictures=images)
        device = next(self.parameters()).device
        means = [self.encoder(image_batch(images[i:i + batch_size]).to(device),
                              self.condition(color[i:i + batch_size].to(device),
                                             shape[i:i + batch_size].to(device)))[0]
                 for i in range(0, len(images), batch_size)]
        return torch.cat(means).cpu()

    @torch.no_grad()
    def generate(self, color, shape, seed: int = 0, codes: torch.Tensor | None = None) -> np.ndarray:
        """uint8 (N, 32, 32, 3) pictures of the captions. ``z`` is drawn with ``seed`` from
        N(0, I), or, given ``codes`` (M, z_dim) from :meth:`codes`, picked among them."""
        self.eval()
        color, shape = check_condition(color, shape)
        rng = torch.Generator().manual_seed(seed)
        if codes is None:
            z = torch.randn(len(color), self.z_dim, generator=rng)
        else:
            codes = torch.as_tensor(codes, dtype=torch.float32)
            if codes.dim() != 2 or codes.shape[1] != self.z_dim or len(codes) == 0:
                raise ValueError(f"expected codes of shape (M, {self.z_dim}) from model.codes(...), "
                                 f"got {tuple(codes.shape)}")
            z = codes[torch.randint(0, len(codes), (len(color),), generator=rng)]
        device = next(self.parameters()).device
        return to_uint8(self.decoder(self.condition(color.to(device), shape.to(device)), z.to(device)))


# --- the judge -------------------------------------------------------------------------------

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

    def loss(self, batch) -> torch.Tensor:
        images, color, shape = batch
        color_logits, shape_logits = self(image_batch(images))
        return F.cross_entropy(color_logits, color) + F.cross_entropy(shape_logits, shape)

    @torch.no_grad()
    def judge(self, images, color, shape, batch_size: int = 500) -> dict[str, float]:
        """Share of ``images`` (uint8 (N, 32, 32, 3)) whose colour, shape, and both, this
        classifier reads as the ``color``/``shape`` indices they were meant to show."""
        self.eval()
        color, shape = check_condition(color, shape, pictures=images)
        device = next(self.parameters()).device
        preds = [self(image_batch(images[i:i + batch_size]).to(device))
                 for i in range(0, len(images), batch_size)]
        color_ok = torch.cat([c.argmax(1).cpu() for c, _ in preds]) == color
        shape_ok = torch.cat([s.argmax(1).cpu() for _, s in preds]) == shape
        return {"color": color_ok.float().mean().item(), "shape": shape_ok.float().mean().item(),
                "both": (color_ok & shape_ok).float().mean().item()}


def loss_fn(model: nn.Module, batch) -> torch.Tensor:
    """For ``training.fit``: every model of this module knows its own loss."""
    return model.loss(batch)


# --- the builder -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    kind: str = "vae"          # "vae" (ConditionalVAE) or "regression" (PixelRegressor)
    embed_dim: int = 16
    z_dim: int = 8
    width: int = 32
    beta: float = 1.0


GENERATORS = ("vae", "regression")


def build_generator(config: GeneratorConfig = GeneratorConfig()) -> nn.Module:
    """A caption-to-picture generator from its configuration."""
    if config.kind not in GENERATORS:
        raise ValueError(f"unknown generator kind {config.kind!r}; expected one of {', '.join(GENERATORS)}")
    if config.kind == "regression":
        return PixelRegressor(config.embed_dim, config.width)
    return ConditionalVAE(config.embed_dim, config.z_dim, config.width, config.beta)


def caption_grid(n_per_caption: int, colors=range(len(COLORS)), shapes=range(len(SHAPES))):
    """(colour, shape) index arrays covering every requested caption ``n_per_caption`` times,
    caption by caption: for generating a grid or a balanced test set."""
    if n_per_caption < 1:
        raise ValueError(f"n_per_caption must be at least 1, got {n_per_caption}")
    pairs = [(c, s) for c in colors for s in shapes]
    color = np.repeat([c for c, _ in pairs], n_per_caption)
    shape = np.repeat([s for _, s in pairs], n_per_caption)
    return color.astype(np.int64), shape.astype(np.int64)
