"""Tests for mmlearn.models.speech: Whisper on a real recording, error rates, noise, bad input, CTC."""

import numpy as np
import pytest
import torch

from mmlearn.data import store
from mmlearn.models import audio, speech


@pytest.fixture(scope="module")
def arctic():
    return speech.arctic_recording()


def test_the_arctic_recording_is_four_seconds_of_16khz_speech(arctic):
    waveform, rate = arctic
    assert rate == speech.RATE and waveform.dtype == np.float32 and waveform.shape == (64_000,)
    assert 0.1 < np.abs(waveform).max() <= 1.0


def test_whisper_transcribes_the_real_recording_exactly(arctic):
    heard = speech.transcribe(*arctic)
    assert speech.word_error_rate(speech.ARCTIC_TEXT, heard) == 0.0, heard


def test_whisper_words_are_in_order_and_inside_the_recording(arctic):
    words = speech.transcribe_words(*arctic)
    assert [w.text.strip(".").lower() for w in words] == speech.normalize(speech.ARCTIC_TEXT).split()
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.start <= w.end <= 4.0 + 1e-6 for w in words)
    assert all(0.0 <= w.probability <= 1.0 for w in words)


def test_whisper_model_files_are_checked():
    path = speech.whisper_model_path()
    assert (path / "model.bin").is_file() and store.sha256(path / "config.json")


def test_error_rates_count_edits_after_normalising():
    assert speech.normalize("Turn on, 2 lights!") == "turn on two lights"
    assert speech.word_error_rate("turn on the light", "turn the lights") == pytest.approx(2 / 4)
    # corpus rate: edits summed over pairs / words summed over pairs, not a mean of rates
    assert speech.word_error_rate(["a b c d", "e"], ["a b c d", "x"]) == pytest.approx(1 / 5)
    assert speech.word_error_rate("one two", "") == 1.0
    assert speech.word_error_rate("one", "one two three") == pytest.approx(2.0)   # insertions: above 1
    assert speech.character_error_rate("abcd", "abed") == pytest.approx(1 / 4)


def test_error_rates_reject_mismatched_or_empty_references():
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        speech.word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty after normalisation"):
        speech.word_error_rate(["a", "?!"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one reference"):
        speech.character_error_rate([], [])


def test_add_noise_sets_the_signal_to_noise_ratio(arctic):
    x, _ = arctic
    for snr in (20.0, 5.0, 0.0):
        noise = speech.add_noise(x, snr, seed=1) - x
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.01)
    loud = speech.add_noise(x, -10.0, seed=1)      # x + noise would leave [-1, 1]: scaled to a peak of 1
    assert np.abs(loud).max() == pytest.approx(1.0) and np.corrcoef(loud, x)[0, 1] > 0.2
    assert np.array_equal(speech.add_noise(x, np.inf), x)
    assert not np.array_equal(speech.add_noise(x, 10, seed=0), speech.add_noise(x, 10, seed=1))
    with pytest.raises(ValueError, match="silent"):
        speech.add_noise(np.zeros(1600, np.float32), 10)


# --- bad input: every check says how to fix it --------------------------------------------

def test_wrong_sample_rate_says_how_to_resample(arctic):
    with pytest.raises(ValueError, match=r"16000 Hz.*mmlearn\.models\.audio\.resample"):
        speech.transcribe(arctic[0], 22_050)


def test_stereo_says_how_to_mix_down(arctic):
    stereo = np.stack([arctic[0], arctic[0]], axis=1)
    with pytest.raises(ValueError, match=r"mean\(axis=1\)"):
        speech.transcribe(stereo, speech.RATE)


def test_empty_waveform_is_refused():
    with pytest.raises(ValueError, match="empty"):
        speech.transcribe(np.zeros(0, np.float32), speech.RATE)


def test_int16_is_accepted_but_other_ints_and_unscaled_floats_are_refused(arctic):
    pcm = (arctic[0] * 32767).astype(np.int16)
    assert speech.word_error_rate(speech.ARCTIC_TEXT, speech.transcribe(pcm, speech.RATE)) == 0.0
    with pytest.raises(ValueError, match="int16 PCM"):
        speech.transcribe(pcm.astype(np.int32), speech.RATE)
    with pytest.raises(ValueError, match="(?i)divide by 32768"):
        speech.transcribe(pcm.astype(np.float32), speech.RATE)
    with pytest.raises(ValueError, match="NaN"):
        speech.transcribe(np.full(1600, np.nan, np.float32), speech.RATE)


# --- features, data and the CTC model ---------------------------------------------------------

def test_features_are_normalised_mfccs_at_any_rate():
    wave, rate = audio.synthesize("seven")
    x = speech.features(wave, rate)
    assert x.shape[1] == audio.N_MFCC and x.dtype == np.float32
    assert np.abs(x.mean(0)).max() < 1e-4 and np.abs(x.std(0) - 1).max() < 1e-2
    assert speech.features(audio.resample(wave, rate, 16_000), 16_000).shape[0] == pytest.approx(len(x), abs=2)
    with pytest.raises(ValueError, match=r"\(frames >= 2, 13\)"):
        speech.normalize_features(np.zeros((5, 128)))


def test_digit_speech_matches_its_texts():
    d = speech.digit_speech(6, ["en-us", "en-us+f3"], seed=3)
    assert d.features.shape[0] == 6 and d.features.shape[2] == audio.N_MFCC
    for i, (text, target, n, frames) in enumerate(zip(d.texts, d.targets, d.target_lengths, d.lengths)):
        assert " ".join(speech.DIGIT_WORDS[t - 1] for t in target[:n]) == text and not target[n:].any()
        assert 3 <= n <= 5 and not d.features[i, frames:].any() and d.features[i, frames - 1].any()
    assert set(d.voices) <= {"en-us", "en-us+f3"}
    assert d.texts == speech.digit_speech(6, ["en-us", "en-us+f3"], seed=3).texts


def test_greedy_decode_merges_repeats_and_drops_blanks():
    steps = [0, 3, 3, 0, 3, 1, 1, 0, 0]         # blank 2 2 blank 2 0 0 blank blank
    log_probs = torch.full((len(steps), 1, 11), -10.0)
    log_probs[torch.arange(len(steps)), 0, torch.tensor(steps)] = 0.0
    assert speech.greedy_decode(log_probs, torch.tensor([len(steps)])) == ["two two zero"]
    assert speech.greedy_decode(log_probs, torch.tensor([3])) == ["two"]


def test_ctc_model_shapes_and_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    d = speech.digit_speech(16, ["en-us"], seed=0)
    batch = [torch.as_tensor(a) for a in (d.features, d.lengths, d.targets, d.target_lengths)]
    model = speech.CTCRecognizer()
    log_probs, out_lengths = model(batch[0], batch[1])
    assert log_probs.shape == ((d.features.shape[1] + 1) // 2, 16, 11)
    assert torch.equal(out_lengths, (batch[1] + 1) // 2)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = speech.ctc_loss(model, batch).item()
    for _ in range(15):
        loss = speech.ctc_loss(model, batch)
        optimizer.zero_grad(), loss.backward(), optimizer.step()
    assert speech.ctc_loss(model, batch).item() < 0.7 * first
    with pytest.raises(ValueError, match="speech.features"):
        model(batch[0][..., :12], batch[1])


def test_recognize_digits_returns_one_string_per_utterance():
    d = speech.digit_speech(3, ["en-us"], seed=1)
    texts = speech.recognize_digits(speech.CTCRecognizer(), d.features, d.lengths, batch_size=2)
    assert len(texts) == 3 and all(set(t.split()) <= set(speech.DIGIT_WORDS) for t in texts)


def test_synthetic_speech_is_16khz_within_range_and_heard_by_whisper():
    wave = speech.synthetic_speech("four one seven two", "en-gb-x-rp")
    assert wave.dtype == np.float32 and np.abs(wave).max() <= 1.0
    assert speech.word_error_rate("four one seven two", speech.transcribe(wave, speech.RATE)) == 0.0
