"""The layers and the loss that several chapters share, in PyTorch.

One home for each building block; the chapters' models (:mod:`mmlearn.models.deconv`,
:mod:`mmlearn.models.fusion`, :mod:`mmlearn.models.generation`, :mod:`mmlearn.models.crossmodal`,
:mod:`mmlearn.models.audio`, :mod:`mmlearn.models.vqa`, ...) import them from here and never from
each other.
:mod:`mmlearn.blocks_keras` is the Keras twin of the attention and contrastive parts, under the
same names and with the same parameters in the same layout.

1. convolution blocks (Part I): :class:`ConvBlock` and :class:`DeconvBlock` (transposed
   convolution, 反卷积) with Keras-style ``"same"`` padding and Keras' BatchNorm epsilon;
   ``bn_momentum`` is given in Keras' convention (the share of the old running average kept at
   each step; PyTorch's ``momentum`` is ``1 - bn_momentum``);
2. the joint space (Part II): :class:`ProjectionHead` and :class:`LogitScale` (the learnable,
   clamped temperature);
3. attention: :func:`attention` (scaled dot-product attention that also returns its weights)
   and :class:`CrossAttention` (one modality's items attend to the other's);
4. the contrastive loss: :func:`similarity` and :func:`contrastive_loss`, the symmetric
   InfoNCE loss of CLIP;
5. image regions (Part II's 64 px pictures): :class:`ImageRegions`, the small CNN whose 8 x 8
   grid of region features the VQA and tagging chapters share;
6. sequences of frames (spoken digits as MFCCs): :class:`FrameEncoder`, two 1-D convolutions
   over time and a max over time, which the fusion and the speech chapters share.

This module does not import TensorFlow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmlearn.inputs import check_array, to_float
from mmlearn.operators import same_padding

BN_EPS = 1e-3                # Keras' BatchNormalization default
ARTICLE_BN_MOMENTUM = 0.99   # Keras' default, which the article keeps
FORMULA_BN_MOMENTUM = 0.9    # statistics that settle within a few hundred steps


# --- 1. convolution blocks -------------------------------------------------------------------

class ConvBlock(nn.Sequential):
    """Conv2d -> BatchNorm -> ReLU, with Keras-style ``"same"`` padding.

    ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 bn_momentum: float = ARTICLE_BN_MOMENTUM):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                      padding=same_padding(kernel_size, stride)),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=1 - bn_momentum),
            nn.ReLU(inplace=True),
        )


class DeconvBlock(nn.Sequential):
    """Transposed convolution (反卷积) -> BatchNorm -> ReLU: upsample a feature map by ``stride``.

    ``(B, in_channels, H, W) -> (B, out_channels, H * stride, W * stride)``; the default
    4x4 kernel with stride 2 doubles the grid. It matches Keras'
    ``Conv2DTranspose(out_channels, kernel_size, strides=stride, padding="same")``.

    Set ``batch_norm=False`` and/or ``activation=False`` for an output layer (for example the
    last layer of an image decoder, followed by your own ``tanh`` or ``sigmoid``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
                 batch_norm: bool = True, activation: bool = True,
                 bn_momentum: float = ARTICLE_BN_MOMENTUM):
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride,
                                                      padding=same_padding(kernel_size, stride))]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=1 - bn_momentum))
        if activation:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


# --- 2. the joint space ----------------------------------------------------------------------

class ProjectionHead(nn.Module):
    """Maps one tower's features into the joint space: a linear projection plus a residual
    GELU-MLP refinement, then LayerNorm. Works on (..., in_dim) -> (..., out_dim)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.proj(x)
        return self.norm(z + self.mlp(z))


class LogitScale(nn.Module):
    """The learnable inverse temperature 1/tau of the contrastive loss, as in CLIP.

    It is stored as log(1/tau) so it stays positive, starts at 1/``init_temperature`` and is
    clamped to at most ``max_scale`` (CLIP's 100): without the clamp, training can push it up
    until the softmax is one-hot and the loss unstable.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        if not 0 < init_temperature:
            raise ValueError(f"init_temperature must be positive, got {init_temperature}")
        if not 1.0 / init_temperature <= max_scale:
            raise ValueError(f"1/init_temperature = {1 / init_temperature:.1f} exceeds "
                             f"max_scale = {max_scale}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log_scale = math.log(max_scale)

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(0.0, self.max_log_scale).exp()


# --- 3. attention ----------------------------------------------------------------------------

def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              key_padding_mask: torch.Tensor | None = None, scale: float | None = None):
    """Scaled dot-product attention softmax(q k^T / sqrt(d)) v that also returns the weights.

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); ``key_padding_mask`` (B, Lk) bool, True
    where a key is real (the ``attention_mask`` convention of ``transformers``). Returns
    (output (..., Lq, dv), weights (..., Lq, Lk)); each row of weights sums to 1 over the keys
    and is 0 on masked keys.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale  # (..., Lq, d) x (..., d, Lk) -> (..., Lq, Lk)
    if key_padding_mask is not None:
        keep = key_padding_mask.bool()
        if not keep.any(dim=-1).all():
            raise ValueError("key_padding_mask masks every key of some row; keep at least one")
        keep = keep.view(keep.shape[0], *([1] * (scores.dim() - 2)), keep.shape[-1])
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def check_cross_attention_shapes(dim: int, queries_shape, keys_shape, mask_shape=None) -> None:
    """Raise a ValueError naming the expected form unless queries (B, Lq, dim), keys
    (B, Lk, dim) and an optional key padding mask (B, Lk) fit together. Shared with the
    Keras twin in :mod:`mmlearn.blocks_keras`."""
    q, k = tuple(queries_shape), tuple(keys_shape)
    if len(q) != 3 or len(k) != 3 or q[-1] != dim or k[-1] != dim:
        raise ValueError(f"expected queries (B, Lq, {dim}) and keys (B, Lk, {dim}), got {q} and {k}")
    if q[0] != k[0]:
        raise ValueError(f"queries and keys must hold the same batch, got {q[0]} and {k[0]} items")
    if mask_shape is not None and tuple(mask_shape) != k[:2]:
        raise ValueError(f"expected key_padding_mask of shape (B, Lk) = {k[:2]}, got {tuple(mask_shape)}")


class CrossAttention(nn.Module):
    """Multi-head attention where ``queries`` of one modality attend to ``keys`` of another.

    (B, Lq, dim) queries and (B, Lk, dim) keys/values -> (B, Lq, dim) outputs and the
    attention weights averaged over heads, (B, Lq, Lk). The parameters are laid out like
    ``nn.MultiheadAttention``'s (``in_proj_weight`` rows: q, k, v), so weights copy across.
    """

    def __init__(self, dim: int, num_heads: int = 1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape  # (B, L, dim) -> (B, heads, L, dim/heads)
        return x.view(b, length, self.num_heads, self.dim // self.num_heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None):
        check_cross_attention_shapes(self.dim, queries.shape, keys.shape,
                                     None if key_padding_mask is None else key_padding_mask.shape)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = self._heads(F.linear(queries, w_q, b_q))
        k = self._heads(F.linear(keys, w_k, b_k))
        v = self._heads(F.linear(keys, w_v, b_v))
        out, weights = attention(q, k, v, key_padding_mask)  # (B, h, Lq, d/h), (B, h, Lq, Lk)
        out = out.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], self.dim)
        return self.out_proj(out), weights.mean(dim=1)


# --- 4. the contrastive loss -----------------------------------------------------------------

def similarity(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (N_image, N_text) of two sets of embeddings."""
    if image_emb.dim() != 2 or text_emb.dim() != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"expected embeddings (N, D) and (M, D), got {tuple(image_emb.shape)} "
                         f"and {tuple(text_emb.shape)}")
    return F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T


def contrastive_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
                     pair_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) loss of a batch of N matching (image, text) pairs.

    logits = logit_scale * cos(image_i, text_j); the loss is the mean of the cross-entropy
    picking the right text for each image (rows) and the right image for each text (columns).
    Row i's target is pair i. With ``pair_ids`` (N,), all pairs sharing an id count as right
    answers, with equal target probability (two images with the same caption are not
    negatives of each other).
    """
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(f"expected as many images as texts (matching pairs), got "
                         f"{image_emb.shape[0]} image and {text_emb.shape[0]} text embeddings")
    logits = logit_scale * similarity(image_emb, text_emb)  # (N, N)
    if pair_ids is None:
        targets = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    if pair_ids.shape != (len(logits),):
        raise ValueError(f"expected pair_ids of shape ({len(logits)},), got {tuple(pair_ids.shape)}")
    same = (pair_ids[:, None] == pair_ids[None, :]).to(logits.dtype)
    targets = same / same.sum(dim=1, keepdim=True)  # symmetric, so it serves both directions
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


# --- 5. image regions ------------------------------------------------------------------------

REGIONS_IMAGE_SIZE = 64   # easy-VQA's pictures


def check_region_images(images) -> None:
    """Raise unless ``images`` is (N, 64, 64, 3) channels-last uint8: the pictures
    :class:`ImageRegions` reads."""
    check_array(images, size=REGIONS_IMAGE_SIZE)


def _region_conv(c_in: int, c_out: int, stride: int = 2) -> nn.Sequential:
    """3x3 convolution (no bias), PyTorch's default BatchNorm, ReLU; stride 2 halves the grid."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ImageRegions(nn.Module):
    """uint8 images (B, 64, 64, 3) -> region features (B, 64, dim): an 8 x 8 grid of regions.

    Each region's receptive field is 31 px wide, about the size of the largest shape, so a
    region on the shape sees enough of its outline to tell a corner from a curve.
    """

    def __init__(self, dim: int = 64, width: int = 16):
        super().__init__()
        self.cnn = nn.Sequential(_region_conv(3, width),             # (B, 3, 64, 64) -> (B, w, 32, 32)
                                 _region_conv(width, 2 * width),     # -> (B, 2w, 16, 16)
                                 _region_conv(2 * width, dim),       # -> (B, dim, 8, 8)
                                 _region_conv(dim, dim, stride=1))   # -> (B, dim, 8, 8)
        self.position = nn.Parameter(torch.zeros(1, 64, dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_float(images)                                     # (B, 64, 64, 3) -> (B, 3, 64, 64)
        x = self.cnn(x)                                          # (B, dim, 8, 8)
        return x.flatten(2).transpose(1, 2) + self.position      # (B, 64, dim)


# --- 6. sequences of frames --------------------------------------------------------------------

class FrameEncoder(nn.Module):
    """(B, frames, features) -> (B, width): two 1-D convolutions over time, then the max over time.

    Each convolution (kernel 5, "same" padding) is followed by BatchNorm and ReLU, so it sees
    five frames of context (about 90 ms of MFCC frames); the max over time finds the frames that
    carry the word wherever they lie in the padded window. ``normalize_input`` puts a BatchNorm
    over the features first, for coefficients whose scales differ by orders of magnitude (raw
    MFCCs: c0 near -300, the rest near 0); already standardised features do without it.
    """

    def __init__(self, features: int, width: int, normalize_input: bool = False):
        super().__init__()
        self.features, self.out_features = features, width
        self.norm = nn.BatchNorm1d(features) if normalize_input else nn.Identity()
        self.convs = nn.Sequential(
            nn.Conv1d(features, width, kernel_size=5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=5, padding=2), nn.BatchNorm1d(width), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2))   # (B, T, F) -> (B, F, T)
        h = self.convs(h)                  # -> (B, width, T)
        return h.amax(dim=2)               # -> (B, width)
