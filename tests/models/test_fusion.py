"""mmlearn.models.fusion: corruption, the five variants' shapes, the deconv path, bad input, the runner."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn.models import fusion as fu
from mmlearn.config import RunSize

B, FRAMES = 4, 48


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(B, 1, 28, 28, generator=g), torch.randn(B, FRAMES, fu.N_MFCC, generator=g)


@pytest.mark.parametrize("variant", list(fu.TRAINABLE))
def test_every_variant_gives_logits_and_gradients(variant):
    model = fu.build(fu.Config(variant, width=4))
    image, audio = batch()
    logits = model(image, audio)
    assert logits.shape == (B, fu.N_CLASSES)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unimodal_models_ignore_the_other_modality():
    image, audio = batch()
    for variant, other in (("image", (image, torch.zeros_like(audio))), ("audio", (torch.zeros_like(image), audio))):
        model = fu.build(fu.Config(variant, width=4)).eval()
        assert torch.allclose(model(image, audio), model(*other))


def test_fusion_models_use_both_modalities():
    # seeded: with 4 channels an unlucky initialisation can leave every unit of one modality's
    # path dead (ReLU), and the output would then not depend on it before any training
    torch.manual_seed(0)
    image, audio = batch()
    for variant in ("concat", "deconv"):
        model = fu.build(fu.Config(variant, width=4)).eval()
        base = model(image, audio)
        assert not torch.allclose(base, model(torch.zeros_like(image), audio))
        assert not torch.allclose(base, model(image, torch.zeros_like(audio)))


def test_deconv_fusion_draws_audio_onto_the_image_grid():
    model = fu.build(fu.Config("deconv", width=4)).eval()
    image, audio = batch()
    assert model.audio_map(audio).shape == (B, 4, 14, 14)
    assert model.image(image).shape[2:] == (14, 14)


def test_late_fusion_adds_log_probabilities():
    image_model, audio_model = (fu.build(fu.Config(v, width=4)).eval() for v in ("image", "audio"))
    image, audio = batch()
    fused = fu.LateFusion(image_model, audio_model)(image, audio)
    expected = image_model(image, audio).log_softmax(1) + audio_model(image, audio).log_softmax(1)
    assert torch.allclose(fused, expected)


def test_corruption_shapes_and_strength():
    rng = np.random.default_rng(0)
    images = np.full((3, 28, 28), 255, dtype=np.uint8)
    clean = fu.corrupt_images(images, fu.Corruption(occlude=0, image_noise=0.0), rng)
    assert clean.shape == (3, 1, 28, 28) and clean.dtype == np.float32 and clean.max() == 1.0
    hidden = fu.corrupt_images(images, fu.Corruption(occlude=10, image_noise=0.0), rng)
    assert np.all((hidden == 0).sum(axis=(1, 2, 3)) == 100)

    audio = np.zeros((2, FRAMES, fu.N_MFCC), dtype=np.float32)
    audio[0, :20], audio[1, :8] = 1.0, 2.0                         # recordings of 20 and 8 frames
    stats = (np.zeros(fu.N_MFCC, np.float32), np.ones(fu.N_MFCC, np.float32))
    kept = fu.corrupt_audio(audio, fu.Corruption(keep_frames=5, audio_noise=0.0), rng, stats)
    assert kept.shape == audio.shape
    assert [int(np.any(a != 0, axis=1).sum()) for a in kept] == [5, 5]


def test_audio_statistics_ignore_padding():
    audio = np.zeros((2, 10, fu.N_MFCC), dtype=np.float32)
    audio[:, :3] = 4.0
    mean, std = fu.audio_statistics(audio)
    assert np.allclose(mean, 4.0) and np.all(std < 1e-3)


def test_bad_input_names_the_expected_form():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        fu.corrupt_images(np.zeros((2, 1, 28, 28), np.uint8), fu.Corruption(), rng)
    with pytest.raises(ValueError, match="uint8"):
        fu.corrupt_images(np.zeros((2, 28, 28), np.float32), fu.Corruption(), rng)
    with pytest.raises(ValueError, match="transpose"):
        fu.audio_statistics(np.ones((2, fu.N_MFCC, FRAMES), np.float32))
    with pytest.raises(ValueError, match="unknown variant"):
        fu.Config("middle")
    with pytest.raises(ValueError, match="LateFusion"):
        fu.Config("late")
    with pytest.raises(ValueError, match="width"):
        fu.Config("image", width=0)
    with pytest.raises(ValueError, match="occlude"):
        fu.Corruption(occlude=40)
    with pytest.raises(ValueError, match="seeds"):
        fu.run_experiment(RunSize(8, 8, 1, 8), seeds=(0, 0))


def test_runner_reports_every_variant_per_seed():
    results = fu.run_experiment(RunSize(n_train=64, n_test=32, epochs=1, batch_size=32), seeds=(0, 1),
                                width=2, verbose=False)
    assert set(results.accuracy) == set(fu.VARIANTS)
    assert all(len(a) == 2 and all(0 <= x <= 1 for x in a) for a in results.accuracy.values())
    assert results.predictions["late"][0].shape == (32,)
    assert results.best(fu.VARIANTS) in fu.VARIANTS
    assert "variant" in results.table()
    mm.seed_everything(0)


def test_curves_are_measured_on_a_validation_split_kept_out_of_training():
    train, _ = fu.make_data(seed=0)
    rest, val = train.split_validation(100)
    assert len(val.y) == 100 and len(rest.y) + len(val.y) == len(train.y)
    np.testing.assert_array_equal(val.image, train.image[-100:])
    with pytest.raises(ValueError, match="validation pairs"):
        train.split_validation(len(train.y))
    results = fu.run_experiment(RunSize(n_train=64, n_test=32, epochs=2, batch_size=32, n_val=48),
                                seeds=(0,), width=2, verbose=False)
    assert all(len(results.histories[v][0]["val_accuracy"]) == 2 for v in fu.TRAINABLE)
    assert "test_accuracy" not in results.histories["image"][0]
    mm.seed_everything(0)


def test_concat_and_deconv_fusion_have_matched_capacity():
    for width in (4, 8, 16):
        concat, deconv = (fu.n_parameters(fu.build(fu.Config(v, width))) for v in ("concat", "deconv"))
        assert abs(concat - deconv) <= 0.01 * deconv, (width, concat, deconv)
    assert fu.n_parameters(fu.ConcatFusion(8, hidden=10)) < fu.n_parameters(fu.build(fu.Config("concat", 8)))
    with pytest.raises(ValueError, match="hidden"):
        fu.ConcatFusion(8, hidden=0)
