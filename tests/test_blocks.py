"""mmlearn.blocks: the shared blocks resize as documented, the loss and attention compute
what their formulas say, and bad input is refused."""

import pytest
import torch
import torch.nn.functional as F

import mmlearn  # noqa: F401  (first: PyTorch before TensorFlow)

from mmlearn import blocks


def test_blocks_resize_as_documented():
    x = torch.rand(2, 5, 8, 8)
    assert blocks.ConvBlock(5, 7, 3, 1)(x).shape == (2, 7, 8, 8)
    assert blocks.ConvBlock(5, 7, 4, 2)(x).shape == (2, 7, 4, 4)
    assert blocks.DeconvBlock(5, 7)(x).shape == (2, 7, 16, 16)
    assert blocks.DeconvBlock(5, 7, 8, 4)(x).shape == (2, 7, 32, 32)
    bare = blocks.DeconvBlock(5, 3, batch_norm=False, activation=False)
    assert len(bare) == 1 and (bare(x) < 0).any()   # no ReLU: negative outputs survive


def test_blocks_refuse_padding_keras_would_place_asymmetrically():
    with pytest.raises(ValueError, match="kernel_size - stride to be even"):
        blocks.DeconvBlock(4, 4, kernel_size=3, stride=2)


def test_contrastive_loss_is_cross_entropy_both_ways():
    torch.manual_seed(0)
    img, txt, scale = torch.randn(5, 8), torch.randn(5, 8), torch.tensor(7.0)
    logits = scale * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T
    target = torch.arange(5)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert torch.allclose(blocks.contrastive_loss(img, txt, scale), expected)
    # with all-distinct pair ids the multi-positive form is the same loss
    assert torch.allclose(blocks.contrastive_loss(img, txt, scale, pair_ids=torch.arange(5)), expected)
    # perfectly aligned pairs at a high scale give a near-zero loss
    eye = torch.eye(5, 8)
    assert blocks.contrastive_loss(eye, eye, torch.tensor(100.0)) < 1e-6


def test_contrastive_loss_shared_ids_are_not_negatives():
    # images 0 and 1 share a caption. Plain InfoNCE prefers them pulled apart (B) over
    # identical (A); with pair ids it prefers them identical, like their captions.
    together = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    apart = torch.tensor([[1.0, 0.4], [1.0, -0.4], [0.0, 1.0]])
    ids, scale = torch.tensor([0, 0, 1]), torch.tensor(20.0)
    assert blocks.contrastive_loss(apart, apart, scale) < blocks.contrastive_loss(together, together, scale)
    assert (blocks.contrastive_loss(together, together, scale, ids)
            < blocks.contrastive_loss(apart, apart, scale, ids))


def test_contrastive_loss_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="as many images as texts"):
        blocks.contrastive_loss(torch.randn(4, 8), torch.randn(3, 8), torch.tensor(1.0))


def test_logit_scale_starts_at_inverse_temperature_and_is_clamped():
    s = blocks.LogitScale(0.07)
    assert torch.isclose(s(), torch.tensor(1 / 0.07))
    with torch.no_grad():
        s.log_scale.fill_(10.0)
    assert torch.isclose(s(), torch.tensor(100.0))
    with pytest.raises(ValueError):
        blocks.LogitScale(0.001)


def test_attention_weights_sum_to_one_and_masked_keys_get_zero():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out, w = blocks.attention(q, k, v, mask)
    assert out.shape == (2, 3, 6) and w.shape == (2, 3, 5)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert (w[0, :, 3:] == 0).all()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, :])
    assert torch.allclose(out, ref, atol=1e-6)
    with pytest.raises(ValueError, match="every key"):
        blocks.attention(q, k, v, torch.zeros(2, 5, dtype=torch.bool))


def test_cross_attention_equals_multihead_attention():
    torch.manual_seed(0)
    ours, ref = blocks.CrossAttention(8, num_heads=2), torch.nn.MultiheadAttention(8, 2, batch_first=True)
    ref.load_state_dict(ours.state_dict())
    q, kv = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    keep = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    out, w = ours(q, kv, key_padding_mask=keep)
    ref_out, ref_w = ref(q, kv, kv, key_padding_mask=~keep)
    assert torch.allclose(out, ref_out, atol=1e-6) and torch.allclose(w, ref_w, atol=1e-6)
    with pytest.raises(ValueError, match="same batch"):
        ours(q, kv[:1])
