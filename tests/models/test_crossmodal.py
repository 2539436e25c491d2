"""Tests of mmlearn.models.crossmodal: the towers, the networks, tags from the joint space, bad input."""

import numpy as np
import pytest
import torch

import mmlearn as mm  # noqa: F401  (import order: mmlearn first)
from mmlearn import blocks
from mmlearn.models import crossmodal as cm


@pytest.fixture(scope="module")
def text():
    torch.manual_seed(0)
    return cm.TextEncoder(embed_dim=16, model="minilm")


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(0)
    return cm.ImageEncoder(embed_dim=16, image_size=32, stem="small", pretrained=False)


def test_image_tensor_layout_and_normalisation():
    x = np.full((2, 32, 32, 3), 255, dtype=np.uint8)
    t = cm.image_tensor(x, 32)
    assert t.shape == (2, 3, 32, 32) and t.dtype == torch.float32
    expected = (1 - torch.tensor(cm.IMAGENET_MEAN)) / torch.tensor(cm.IMAGENET_STD)
    assert torch.allclose(t[0, :, 0, 0], expected)


@pytest.mark.parametrize("shape,match", [((2, 3, 32, 32), "transpose with x.transpose"),
                                         ((2, 16, 16, 3), "resize them to 32x32"),
                                         ((32, 32, 3), "expected images of shape")])


def test_image_tensor_rejects_wrong_layout(shape, match):
    with pytest.raises(ValueError, match=match):
        cm.image_tensor(np.zeros(shape, np.uint8), 32)


def test_image_encoder_shapes_and_channel_order(image):
    x = torch.randn(3, 3, 32, 32)
    assert image.regions(x).shape == (3, 4, 16)   # 32 px / 16 = 2x2 regions
    assert image(x).shape == (3, 16)
    assert torch.allclose(image(x), image.regions(x).mean(1))
    with pytest.raises(ValueError, match="permute"):
        image(torch.randn(3, 32, 32, 3))
    assert image.pretrained is False


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="minilm"):
        cm.TextEncoder(model="gpt-7")
    with pytest.raises(ValueError, match="imagenet, small"):
        cm.ImageEncoder(stem="tiny", pretrained=False)


def test_text_pooling_ignores_padding(text):
    tok = text.tokenize(["a red circle", "a small blue triangle at the top left"])
    assert tok["attention_mask"][0].sum() < tok["attention_mask"][1].sum()
    alone = text.pooled(**text.tokenize(["a red circle"]))
    padded = text.pooled(**tok)[:1]
    assert torch.allclose(alone, padded, atol=1e-5)
    assert text(**tok).shape == (2, 16)


def test_frozen_text_backbone_gets_no_gradient(text):
    out = text(**text.tokenize(["a red circle"])).sum()
    out.backward()
    assert all(p.grad is None for p in text.backbone.parameters())
    assert text.head.proj.weight.grad is not None


@pytest.mark.parametrize("captions", [[], "a red circle", ["ok", ""]])
def test_bad_captions_raise(text, captions):
    with pytest.raises(ValueError, match="list"):
        text.tokenize(captions)


def test_fusion_network_shapes_and_mask():
    torch.manual_seed(0)
    net = cm.FusionNetwork(dim=8, n_outputs=5, num_heads=2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    logits, maps = net(torch.randn(2, 4, 8), torch.randn(2, 3, 8), mask)
    assert logits.shape == (2, 5)
    assert maps["image_to_text"].shape == (2, 4, 3) and maps["text_to_image"].shape == (2, 3, 4)
    assert (maps["image_to_text"][0, :, 2] == 0).all()
    with pytest.raises(ValueError, match="same batch"):
        net(torch.randn(2, 4, 8), torch.randn(3, 3, 8))


def test_dual_encoder_trains_and_maps_attention(image, text):
    model = cm.DualEncoder(image, text)
    tok = text.tokenize(["a red circle", "a blue square"])
    x = torch.randn(2, 3, 32, 32)
    img, txt, scale = model(x, tok["input_ids"], tok["attention_mask"])
    loss = blocks.contrastive_loss(img, txt, scale)
    loss.backward()
    assert model.logit_scale.log_scale.grad is not None
    maps = model.attention_map(x, txt.detach())
    assert maps.shape == (2, 2, 2) and torch.allclose(maps.sum((1, 2)), torch.ones(2))
    with pytest.raises(ValueError, match="one caption per image"):
        model(x[:1], tok["input_ids"], tok["attention_mask"])


def test_tag_probabilities_sum_caption_probabilities():
    image_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    caption_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    tags = np.array([[True, False], [False, True], [True, True]])
    p = cm.tag_probabilities(image_emb, caption_emb, tags, logit_scale=10.0)
    p_caption = (10.0 * blocks.similarity(image_emb, caption_emb)).softmax(1)
    assert torch.allclose(p[:, 0], p_caption[:, 0] + p_caption[:, 2])
    assert p[0, 0] > 0.99 and p[1, 1] > 0.99
    with pytest.raises(ValueError, match="bool \\(captions, tags\\)"):
        cm.tag_probabilities(image_emb, caption_emb, tags[:2], logit_scale=1.0)


def test_fit_on_captions_lowers_the_loss_and_checks_input(image, text):
    torch.manual_seed(0)
    model = cm.DualEncoder(image, text)
    features = text.pooled_features(["a red circle", "a blue square", "a green triangle", "a black dot"])
    x, ids = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 3] * 2)
    history = cm.fit_on_captions(model, x, ids, features, epochs=6, batch_size=4, lr=1e-3, verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="one caption id per picture"):
        cm.fit_on_captions(model, x, ids[:5], features, epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="index the 4 rows"):
        cm.fit_on_captions(model, x, ids + 1, features, epochs=1, batch_size=4)


def test_factorised_class_probabilities_multiply_the_marginals():
    torch.manual_seed(0)
    image_emb, caption_emb = torch.randn(5, 8), torch.randn(6, 8)
    color, kind = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1])
    p = cm.factorised_class_probabilities(image_emb, caption_emb, [color, kind], 3.0)
    p_color = cm.tag_probabilities(image_emb, caption_emb, color[:, None] == np.arange(3), 3.0)
    p_kind = cm.tag_probabilities(image_emb, caption_emb, kind[:, None] == np.arange(2), 3.0)
    assert p.shape == (5, 6)
    assert torch.allclose(p[:, 2 * 1 + 0], p_color[:, 1] * p_kind[:, 0])   # last factor fastest
    assert torch.allclose(p.sum(1), torch.ones(5))
    with pytest.raises(ValueError, match="one entry per caption"):
        cm.factorised_class_probabilities(image_emb, caption_emb, [color[:4]], 3.0)


def test_retrieval_recall_counts_class_and_exact_hits(image, text):
    model = cm.DualEncoder(image, text)
    features = text.pooled_features(["a red circle", "a blue square"])
    x = torch.randn(4, 3, 32, 32)
    r = cm.retrieval_recall(model, x, features, labels=[0, 0, 1, 1], caption_ids=[0, 0, 1, 1], ks=(1, 4))
    assert r["i2t_R@4"] == r["t2i_R@4"] == r["exact_t2i_R@4"] == 1.0     # everything is in the top 4
    assert set(r) == {f"{d}_R@{k}" for d in ("i2t", "t2i", "exact_t2i") for k in (1, 4)}
    with pytest.raises(ValueError, match="one label and one caption id per picture"):
        cm.retrieval_recall(model, x, features, labels=[0, 1], caption_ids=[0, 0, 1, 1])
