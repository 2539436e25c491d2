"""mmlearn.blocks_keras: same name as in mmlearn.blocks, two frameworks, same numbers."""

import numpy as np
import pytest
import torch

from mmlearn import blocks as pt
from mmlearn import blocks_keras as bk

TOL = 1e-5


def _rng_array(seed, *shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _max_diff(torch_out, keras_out):
    return float(np.abs(torch_out.detach().numpy() - np.asarray(keras_out)).max())


@pytest.mark.parametrize("heads", [1, 4])
def test_cross_attention_matches_pytorch_with_a_padding_mask(heads):
    torch.manual_seed(0)
    t_layer = pt.CrossAttention(16, heads)
    k_layer = bk.torch_to_keras(t_layer, bk.CrossAttention(16, heads))
    q, k = _rng_array(0, 2, 3, 16), _rng_array(1, 2, 5, 16)
    mask = np.ones((2, 5), dtype=bool)
    mask[0, 3:] = False
    t_out, t_w = t_layer(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(mask))
    k_out, k_w = k_layer(q, k, key_padding_mask=mask)
    assert _max_diff(t_out, k_out) < TOL and _max_diff(t_w, k_w) < TOL
    k_w = np.asarray(k_w)
    np.testing.assert_allclose(k_w.sum(-1), 1.0, atol=1e-6)
    assert np.all(k_w[0, :, 3:] == 0.0)


def test_projection_head_matches_pytorch_and_keras_defaults_do_not():
    torch.manual_seed(0)
    t_head = pt.ProjectionHead(24, 8)
    x = _rng_array(2, 6, 24)
    ours = bk.torch_to_keras(t_head, bk.ProjectionHead(24, 8))
    assert _max_diff(t_head(torch.from_numpy(x)), ours(x)) < TOL
    keras_defaults = bk.torch_to_keras(
        t_head, bk.ProjectionHead(24, 8, epsilon=1e-3, approximate_gelu=True))
    assert _max_diff(t_head(torch.from_numpy(x)), keras_defaults(x)) > 100 * TOL


@pytest.mark.parametrize("with_ids", [False, True])
def test_contrastive_loss_matches_pytorch(with_ids):
    image, text = _rng_array(3, 5, 8), _rng_array(4, 5, 8)
    ids = np.array([0, 1, 0, 2, 1]) if with_ids else None
    t_scale = pt.LogitScale(0.1)
    k_scale = bk.torch_to_keras(t_scale, bk.LogitScale(0.07))
    assert float(k_scale()) == pytest.approx(10.0, rel=1e-6)
    t_loss = pt.contrastive_loss(torch.from_numpy(image), torch.from_numpy(text), t_scale(),
                                 None if ids is None else torch.from_numpy(ids))
    k_loss = bk.contrastive_loss(image, text, k_scale(), ids)
    assert abs(t_loss.item() - float(k_loss)) < TOL


def test_logit_scale_is_clamped_to_max_scale():
    scale = bk.LogitScale(0.07, max_scale=100.0)
    scale.log_scale.assign(10.0)
    assert float(scale()) == pytest.approx(100.0, rel=1e-6)


def test_bad_input_names_the_expected_form():
    layer = bk.CrossAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(B, Lq, 8\)"):
        layer(_rng_array(0, 2, 3, 4), _rng_array(1, 2, 3, 8))
    with pytest.raises(ValueError, match="same batch"):
        layer(_rng_array(0, 2, 3, 8), _rng_array(1, 3, 3, 8))
    with pytest.raises(ValueError, match="as many images as texts"):
        bk.contrastive_loss(_rng_array(0, 3, 4), _rng_array(1, 2, 4), 10.0)
    with pytest.raises(ValueError, match="divisible"):
        bk.CrossAttention(10, 3)
    with pytest.raises(TypeError, match="same name"):
        bk.torch_to_keras(pt.CrossAttention(8, 2), bk.ProjectionHead(8, 4))
