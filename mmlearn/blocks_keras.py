"""The shared attention and contrastive blocks in Keras 3, under the names of :mod:`mmlearn.blocks`.

The same blocks as the PyTorch module, with the same parameters in the same layout, so weights
copy across with :func:`torch_to_keras` and both frameworks compute the same numbers:

* :func:`attention`: scaled dot-product attention that also returns its weights;
* :class:`CrossAttention`: multi-head attention from one modality's items to another's, with
  ``in_proj_weight`` (3 dim, dim) and ``in_proj_bias`` laid out like ``nn.MultiheadAttention``;
* :class:`ProjectionHead`: linear projection + residual GELU-MLP + LayerNorm;
* :class:`LogitScale`: the learnable inverse temperature, clamped to [1, 100];
* :func:`similarity` and :func:`contrastive_loss`: the symmetric InfoNCE (CLIP) loss.

(Part I's convolution blocks are built in Keras by :mod:`mmlearn.models.deconv_keras`, whose layer
names the weight transfer there relies on.)

Two framework defaults differ and would silently break equality, so this module sets them to
PyTorch's: LayerNorm's epsilon (Keras 1e-3, PyTorch 1e-5) and GELU (Keras' ``gelu`` defaults
to the tanh approximation, ``torch.nn.GELU`` to the exact erf form).

Inputs are ``(batch, items, features)`` float32, the same as in PyTorch: a sequence layout has
no channels-first/last question. Importing this module imports TensorFlow (Keras' backend);
:mod:`mmlearn.blocks` does not.
"""

from __future__ import annotations

import math

import numpy as np

from mmlearn.blocks import check_cross_attention_shapes
from mmlearn.config import configure_tensorflow

tf = configure_tensorflow()
keras = tf.keras
ops = keras.ops
layers = keras.layers

TORCH_LAYER_NORM_EPSILON = 1e-5


# --- blocks ----------------------------------------------------------------------------------

def attention(q, k, v, key_padding_mask=None, scale: float | None = None):
    """softmax(q k^T * scale) v and the weights; q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv).

    ``key_padding_mask`` (B, Lk) is True where a key is real; masked keys get weight 0.
    Returns (output (..., Lq, dv), weights (..., Lq, Lk)).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * scale  # (..., Lq, d) x (..., d, Lk) -> (..., Lq, Lk)
    if key_padding_mask is not None:
        keep = ops.cast(key_padding_mask, "bool")
        if not bool(ops.all(ops.any(keep, axis=-1))):
            raise ValueError("key_padding_mask masks every key of some row; keep at least one")
        keep = ops.reshape(keep, (keep.shape[0],) + (1,) * (len(scores.shape) - 2) + (keep.shape[-1],))
        scores = ops.where(keep, scores, float("-inf"))
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, v), weights


class CrossAttention(layers.Layer):
    """Multi-head attention where ``queries`` (B, Lq, dim) attend to ``keys`` (B, Lk, dim).

    Returns the (B, Lq, dim) outputs and the attention weights averaged over heads (B, Lq, Lk).
    """

    def __init__(self, dim: int, num_heads: int = 1, **kwargs):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.dim, self.num_heads = dim, num_heads
        # PyTorch's layout (rows: q, k, v; each (out, in)), so weights copy without transposing.
        self.in_proj_weight = self.add_weight(shape=(3 * dim, dim), initializer="glorot_uniform",
                                              name="in_proj_weight")
        self.in_proj_bias = self.add_weight(shape=(3 * dim,), initializer="zeros", name="in_proj_bias")
        self.out_proj = layers.Dense(dim, name="out_proj")
        self.out_proj.build((None, dim))

    def _heads(self, x):
        b, length = x.shape[0], x.shape[1]  # (B, L, dim) -> (B, heads, L, dim/heads)
        return ops.transpose(ops.reshape(x, (b, length, self.num_heads, self.dim // self.num_heads)),
                             (0, 2, 1, 3))

    def call(self, queries, keys, key_padding_mask=None):
        check_cross_attention_shapes(self.dim, queries.shape, keys.shape,
                                     None if key_padding_mask is None else key_padding_mask.shape)
        w_q, w_k, w_v = ops.split(self.in_proj_weight, 3, axis=0)
        b_q, b_k, b_v = ops.split(self.in_proj_bias, 3, axis=0)
        q = self._heads(ops.matmul(queries, ops.transpose(w_q)) + b_q)
        k = self._heads(ops.matmul(keys, ops.transpose(w_k)) + b_k)
        v = self._heads(ops.matmul(keys, ops.transpose(w_v)) + b_v)
        out, weights = attention(q, k, v, key_padding_mask)  # (B, h, Lq, d/h), (B, h, Lq, Lk)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (queries.shape[0], queries.shape[1], self.dim))
        return self.out_proj(out), ops.mean(weights, axis=1)


class ProjectionHead(layers.Layer):
    """(..., in_dim) -> (..., out_dim): z = Dense(x); LayerNorm(z + Dropout(Dense(GELU(z)))).

    ``epsilon`` and ``approximate_gelu`` default to PyTorch's choices; Keras' own defaults
    (1e-3 and the tanh approximation) give outputs that differ from the PyTorch head by ~1e-3.
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0,
                 epsilon: float = TORCH_LAYER_NORM_EPSILON, approximate_gelu: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.in_dim, self.approximate_gelu = in_dim, approximate_gelu
        self.proj = layers.Dense(out_dim, name="proj")
        self.mlp = layers.Dense(out_dim, name="mlp")
        self.dropout = layers.Dropout(dropout)
        self.norm = layers.LayerNormalization(epsilon=epsilon, name="norm")
        self.proj.build((None, in_dim))
        self.mlp.build((None, out_dim))
        self.norm.build((None, out_dim))

    def call(self, x, training=False):
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"expected features of shape (..., {self.in_dim}), got {tuple(x.shape)}")
        z = self.proj(x)
        h = self.mlp(ops.gelu(z, approximate=self.approximate_gelu))
        return self.norm(z + self.dropout(h, training=training))


class LogitScale(layers.Layer):
    """The learnable inverse temperature 1/tau, stored as log(1/tau) and clamped to
    [0, log(max_scale)] before exponentiating, as in :class:`mmlearn.blocks.LogitScale`."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0, **kwargs):
        super().__init__(**kwargs)
        if not 0 < init_temperature:
            raise ValueError(f"init_temperature must be positive, got {init_temperature}")
        if not 1.0 / init_temperature <= max_scale:
            raise ValueError(f"1/init_temperature = {1 / init_temperature:.1f} exceeds "
                             f"max_scale = {max_scale}")
        self.max_log_scale = math.log(max_scale)
        self.log_scale = self.add_weight(
            shape=(), name="log_scale",
            initializer=keras.initializers.Constant(math.log(1.0 / init_temperature)))

    def call(self):
        return ops.exp(ops.clip(self.log_scale, 0.0, self.max_log_scale))

    def __call__(self):
        # Keras' Layer.__call__ needs an input tensor; this layer has none (it only holds
        # a weight), so ``scale()`` goes straight to ``call`` like ``logit_scale()`` in PyTorch.
        return self.call()


# --- the loss --------------------------------------------------------------------------------

def _l2_normalize(x):
    # PyTorch's F.normalize: x / max(||x||, 1e-12)
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e-12)


def similarity(image_emb, text_emb):
    """Cosine similarities (N_image, N_text) of embeddings (N, D) and (M, D)."""
    if len(image_emb.shape) != 2 or len(text_emb.shape) != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"expected embeddings (N, D) and (M, D), got {tuple(image_emb.shape)} "
                         f"and {tuple(text_emb.shape)}")
    return ops.matmul(_l2_normalize(image_emb), ops.transpose(_l2_normalize(text_emb)))


def _cross_entropy(logits, targets):
    """Mean cross-entropy of logits (N, C) against target probabilities (N, C)."""
    return ops.mean(-ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1))


def contrastive_loss(image_emb, text_emb, logit_scale, pair_ids=None):
    """Symmetric InfoNCE (CLIP) loss of N matching pairs; ``pair_ids`` (N,) marks pairs that
    share an id as right answers too, as in :func:`mmlearn.blocks.contrastive_loss`."""
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(f"expected as many images as texts (matching pairs), got "
                         f"{image_emb.shape[0]} image and {text_emb.shape[0]} text embeddings")
    logits = logit_scale * similarity(image_emb, text_emb)  # (N, N)
    n = logits.shape[0]
    if pair_ids is None:
        targets = ops.eye(n, dtype=logits.dtype)
    else:
        if tuple(pair_ids.shape) != (n,):
            raise ValueError(f"expected pair_ids of shape ({n},), got {tuple(pair_ids.shape)}")
        same = ops.cast(ops.equal(pair_ids[:, None], pair_ids[None, :]), logits.dtype)
        targets = same / ops.sum(same, axis=1, keepdims=True)
    return (_cross_entropy(logits, targets) + _cross_entropy(ops.transpose(logits), targets)) / 2


# --- weights from PyTorch --------------------------------------------------------------------

def _numpy_state(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def torch_to_keras(module, layer: layers.Layer) -> layers.Layer:
    """Copy the weights of a :mod:`mmlearn.blocks` module into its Keras twin ``layer``.

    Keras' Dense kernel is (in, out), PyTorch's Linear weight (out, in): those are transposed;
    everything else copies as it is. Returns ``layer``.
    """
    state = _numpy_state(module)
    expected = {CrossAttention: "CrossAttention", ProjectionHead: "ProjectionHead",
                LogitScale: "LogitScale"}
    kind = expected.get(type(layer))
    if kind is None or type(module).__name__ != kind:
        raise TypeError(f"expected a Keras CrossAttention, ProjectionHead or LogitScale and the "
                        f"PyTorch module of the same name, got {type(layer).__name__} and "
                        f"{type(module).__name__}")

    def dense(target, prefix):
        target.kernel.assign(state[f"{prefix}.weight"].T)
        target.bias.assign(state[f"{prefix}.bias"])

    if kind == "CrossAttention":
        if (layer.dim, layer.num_heads) != (module.dim, module.num_heads):
            raise ValueError(f"shapes differ: Keras dim={layer.dim}, heads={layer.num_heads}; "
                             f"PyTorch dim={module.dim}, heads={module.num_heads}")
        layer.in_proj_weight.assign(state["in_proj_weight"])
        layer.in_proj_bias.assign(state["in_proj_bias"])
        dense(layer.out_proj, "out_proj")
    elif kind == "ProjectionHead":
        if layer.proj.kernel.shape != state["proj.weight"].T.shape:
            raise ValueError(f"shapes differ: Keras projection {tuple(layer.proj.kernel.shape)} "
                             f"(in, out), PyTorch {state['proj.weight'].shape} (out, in)")
        dense(layer.proj, "proj")
        dense(layer.mlp, "mlp.1")
        layer.norm.gamma.assign(state["norm.weight"])
        layer.norm.beta.assign(state["norm.bias"])
    else:
        layer.log_scale.assign(state["log_scale"])
    return layer
