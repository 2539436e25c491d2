"""Tests of mmlearn.models.generation: picture layout, captions, decoder shapes, losses, the judge."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn.models import generation as gen
from mmlearn.data import shapes


@pytest.fixture(scope="module")
def pictures():
    """24 real easy-VQA test pictures shrunk to 32 px, with their colour and shape."""
    test = mm.data.load_easy_vqa().test
    facts = shapes.read_facts(test.images[:24])
    return shapes.downsample(test.images[:24]), facts.color, facts.shape


def test_image_batch_layout_and_errors():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    x[0, 0, 0] = (255, 0, 0)
    t = gen.image_batch(x)
    assert t.shape == (2, 3, 32, 32) and t[0, 0, 0, 0] == 1.0 and t[0, 1, 0, 0] == 0.0
    assert np.array_equal(gen.to_uint8(t), x)
    with pytest.raises(ValueError, match=r"x.transpose\(0, 2, 3, 1\)"):
        gen.image_batch(np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="downsample"):
        gen.image_batch(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        gen.image_batch(np.zeros((2, 32, 32, 3), np.float32))


def test_conditions_and_caption_features_are_checked():
    with pytest.raises(ValueError, match="equal length"):
        gen.check_condition([0, 1], [0])
    with pytest.raises(ValueError, match="shape indices in 0..2"):
        gen.check_condition([0], [3])
    with pytest.raises(ValueError, match="at least one caption"):
        gen.check_condition([], [])
    with pytest.raises(ValueError, match=r"\(N, 384\) from the text tower"):
        gen.check_text(torch.zeros(2, 128), 384)
    with pytest.raises(ValueError, match="one caption per picture"):
        gen.check_text(torch.zeros(2, 384), 384, pictures=np.zeros((3, 32, 32, 3), np.uint8))
    color, shape = gen.caption_grid(2, colors=[1, 5])
    assert color.tolist() == [1] * 6 + [5] * 6 and shape.tolist() == [0, 0, 1, 1, 2, 2] * 2


@pytest.mark.parametrize("kind", gen.GENERATORS)
def test_generators_draw_32px_pictures_and_learn(kind, pictures):
    images, color, shape = pictures
    text = torch.nn.functional.one_hot(torch.as_tensor(shapes.class_index(color, shape)), 24).float()
    torch.manual_seed(0)
    model = gen.build(gen.Config(kind=kind, text_dim=24, width=16))
    loss_fn = {"vae": gen.elbo_loss, "regression": gen.regression_loss}[kind]
    history = mm.training.fit(model, [(torch.as_tensor(images), text)], loss_fn, epochs=12,
                              lr=3e-3, verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    drawn = model.generate(text[:5], seed=1)
    assert drawn.shape == (5, 32, 32, 3) and drawn.dtype == np.uint8
    if kind == "vae":  # a different seed draws a different latent, so a different picture
        assert not np.array_equal(drawn, model.generate(text[:5], seed=2))
        assert np.array_equal(drawn, model.generate(text[:5], seed=1))
        codes = model.codes(images, text)  # aggregate posterior: codes of real pictures
        assert codes.shape == (len(images), model.z_dim)
        assert model.generate(text[:5], z=codes[[3, 1, 4, 1, 5]]).shape == (5, 32, 32, 3)
        with pytest.raises(ValueError, match=r"z of shape \(5, 8\)"):
            model.generate(text[:5], z=codes[:5, :3])


def test_vae_kl_term_is_zero_for_the_prior():
    model = gen.ConditionalVAE(width=16)
    mean, log_var = torch.zeros(3, model.z_dim), torch.zeros(3, model.z_dim)
    kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum()
    assert kl.item() == 0.0
    with pytest.raises(ValueError, match="unknown generator kind"):
        gen.Config(kind="gan")


def test_classifier_judges_colour_and_shape(pictures):
    images, color, shape = pictures
    torch.manual_seed(0)
    clf = gen.ShapeClassifier(width=8)
    batch = (torch.as_tensor(images), torch.as_tensor(color), torch.as_tensor(shape))
    mm.training.fit(clf, [batch], gen.judge_loss, epochs=40, lr=1e-2, verbose=False)
    result = gen.judge_scores(clf.read(images), color, shape)
    assert set(result) == {"color", "shape", "both"}
    assert result["both"] <= min(result["color"], result["shape"])
    assert result["color"] > 0.9  # 24 training pictures, learned by heart
    with pytest.raises(ValueError, match="one \\(colour, shape\\) per picture"):
        gen.judge_scores(clf.read(images[:3]), color[:2], shape[:2])


def test_soften_blurs_edges_and_keeps_flat_areas(pictures):
    images, _, _ = pictures
    soft = gen.soften(images)
    assert soft.shape == images.shape and soft.dtype == np.uint8
    flat = np.full((1, 32, 32, 3), 200, np.uint8)
    assert np.array_equal(gen.soften(flat), flat)                 # a flat picture has no edge to blur
    assert np.abs(soft.astype(int) - images).max() > 20           # the shape's edges move
    with pytest.raises(ValueError, match="channels-last"):
        gen.soften(np.zeros((2, 3, 32, 32), np.uint8))


def drawn_shape(shape: str, top=8, bottom=24, left=6, right=26, colour=(255, 0, 0), tint=(240, 240, 250)):
    """A uint8 (1, 32, 32, 3) picture of one ideal shape, drawn 4x larger and shrunk like easy-VQA's."""
    coverage = gen.shape_templates([4 * top], [4 * bottom], [4 * left], [4 * right], size=128, supersample=1)
    alpha = torch.nn.functional.avg_pool2d(coverage[:, [shapes.SHAPES.index(shape)]], 4)[0, 0, :, :, None].numpy()
    return (alpha * colour + (1 - alpha) * np.array(tint)).round().astype(np.uint8)[None]


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_rule_judge_reads_ideal_shapes_sharp_and_blurred(shape):
    picture = drawn_shape(shape)
    for x in (picture, gen.soften(picture)):
        assert gen.read_drawing(x) == ([shapes.COLORS.index("red")], [shapes.SHAPES.index(shape)])
    blank = np.full((2, 32, 32, 3), 200, np.uint8)
    assert [list(r) for r in gen.read_drawing(blank)] == [[-1, -1], [-1, -1]]  # no shape: no caption matches


def test_rule_judge_agrees_with_the_pixel_facts_on_real_pictures(pictures):
    images, color, shape = pictures
    assert gen.judge_scores(gen.read_drawing(images), color, shape)["both"] >= 0.9


def test_pixel_distances_are_rms_in_0_1():
    black, white = np.zeros((2, 32, 32, 3), np.uint8), np.full((3, 32, 32, 3), 255, np.uint8)
    d = gen.pixel_distances(black, np.concatenate([black[:1], white]), batch_size=1)
    assert d.shape == (2, 4) and torch.allclose(d, torch.tensor([[0.0, 1, 1, 1]] * 2), atol=1e-6)


def test_decoder_sees_the_condition_at_every_scale():
    decoder = gen.Decoder(cond_dim=4, z_dim=2, width=8)
    assert [b[0].in_channels for b in decoder.up] == [32 + 6, 16 + 6, 8 + 6]
    out = decoder(torch.randn(3, 4), torch.randn(3, 2))
    assert out.shape == (3, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
