"""Tests for mmlearn.models.tts: text encoding, eSpeak targets, the text-to-mel network, speaking."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn.models import audio, tts


def test_encode_maps_letters_to_ids_and_refuses_other_characters():
    np.testing.assert_array_equal(tts.encode("abz'"), [1, 2, 26, 27])
    with pytest.raises(ValueError, match="numbers as words"):
        tts.encode("r2d2")
    with pytest.raises(ValueError, match="non-empty"):
        tts.encode("")


def test_word_pool_gives_frequent_plain_words():
    words = tts.word_pool(50)
    assert len(words) == len(set(words)) == 50
    assert all(w.isalpha() and w.islower() and 3 <= len(w) <= 7 for w in words)


@pytest.fixture(scope="module")
def data():
    return tts.espeak_mels(["seven", "cat"], ["en-us", "en"])


def test_espeak_mels_stretches_each_word_to_four_frames_per_letter(data):
    assert data.ids.shape == (4, 5) and data.mel.shape == (4, 20, 128)
    np.testing.assert_array_equal(data.mask.sum(1), [20, 12, 20, 12])
    np.testing.assert_array_equal(data.voice, [0, 0, 1, 1])
    assert data.mel.min() >= 0 and 0.95 < data.mel.max() <= 1.0   # loudest bin ~1 (interpolated)
    assert (data.mel[1, 12:] == 0).all() and (data.ids[1, 3:] == 0).all()   # padding
    assert 10 < data.frames[0] < 40                                        # "seven": ~0.45 s


def test_text_to_mel_upsamples_by_four_with_transposed_convolutions(data):
    mm.seed_everything(0)
    model = tts.TextToMel(n_voices=2, width=32)
    ids, voice, _, _ = data.tensors()
    out = model(ids, voice)
    assert out.shape == (4, 20, 128) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert sum(isinstance(m, torch.nn.ConvTranspose1d) for m in model.modules()) == 2
    with pytest.raises(ValueError, match="voice index"):
        model(ids, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="int64 character ids"):
        model(ids.float(), voice)


def test_mel_loss_ignores_padding_and_training_lowers_it(data):
    mm.seed_everything(0)
    model = tts.TextToMel(n_voices=2, width=32)
    ids, voice, mel, mask = data.tensors()
    changed = mel.clone()
    changed[mask == 0] = 0.5                                   # padding frames do not count
    model.eval()
    assert float(tts.mel_loss(model, (ids, voice, mel, mask))) == pytest.approx(
        float(tts.mel_loss(model, (ids, voice, changed, mask))))
    before = tts.masked_l1(model, data)
    mm.training.fit(model, [data.tensors()] * 30, tts.mel_loss, epochs=1, lr=3e-3, verbose=False)
    assert tts.masked_l1(model, data) < 0.6 * before


def test_speak_returns_audio_of_a_plausible_length():
    model = tts.TextToMel(n_voices=1, width=32)
    wave, rate = tts.speak(model, "hello world", n_iter=4)
    expected = ((5 + 5) * 4.4 + 6 - 1) * audio.HOP
    assert rate == 22_050 and wave.dtype == np.float32
    assert abs(len(wave) - expected) <= 2 * audio.HOP
    with pytest.raises(ValueError, match="at least one word"):
        tts.speak(model, "  ")
