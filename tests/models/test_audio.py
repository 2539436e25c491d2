"""Tests for mmlearn.models.audio: synthesis, recognition, spectrogram, the MFCC encoder, bad input."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn.models import audio


@pytest.fixture(scope="module")
def spoken():
    return audio.synthesize("two")


def test_synthesize_returns_float_mono_at_22050(spoken):
    waveform, rate = spoken
    assert rate == audio.SYNTH_RATE == 22_050
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert 0.1 * rate < len(waveform) < 2 * rate          # one word: well under two seconds
    assert 0.05 < np.abs(waveform).max() <= 1.0            # audible, not clipped


def test_synthesize_rejects_empty_text_and_unknown_voice():
    with pytest.raises(ValueError, match="non-empty text"):
        audio.synthesize("   ")
    with pytest.raises(ValueError, match="no voice"):
        audio.synthesize("hello", voice="no-such-voice")


def test_resample_changes_length_by_the_rate_ratio(spoken):
    waveform, rate = spoken
    out = audio.resample(waveform, rate, audio.ASR_RATE)
    assert out.dtype == np.float32
    assert abs(len(out) - len(waveform) * audio.ASR_RATE / rate) <= 1


def test_transcribe_with_a_digit_grammar_recognises_a_synthesised_digit(spoken):
    waveform, rate = spoken
    x = audio.resample(waveform, rate, audio.ASR_RATE)
    digits = "zero one two three four five six seven eight nine".split()
    text = audio.transcribe(x, audio.ASR_RATE, words=digits)
    assert set(text.split()) <= set(digits) and "two" in text.split()


def test_transcribe_rejects_wrong_rate_stereo_and_unknown_words(spoken):
    waveform, rate = spoken
    with pytest.raises(ValueError, match="16000 Hz.*resample"):
        audio.transcribe(waveform, rate)
    stereo = np.stack([waveform, waveform], axis=1)[:16000]
    with pytest.raises(ValueError, match="mono"):
        audio.transcribe(stereo, audio.ASR_RATE)
    with pytest.raises(ValueError, match="empty"):
        audio.transcribe(np.zeros(0, np.float32), audio.ASR_RATE)
    with pytest.raises(ValueError, match="dictionary"):
        audio.transcribe(waveform[:16000], audio.ASR_RATE, words=["qwxzzy"])


def test_int16_input_is_scaled_to_unit_range():
    pcm = np.array([-32768, 0, 16384], dtype=np.int16)
    np.testing.assert_allclose(audio.as_waveform(pcm, 16000), [-1.0, 0.0, 0.5])


def test_spectrogram_finds_a_pure_tone():
    rate = 16_000
    t = np.arange(rate) / rate
    freqs, times, power = audio.spectrogram(np.sin(2 * np.pi * 1000 * t), rate)
    assert power.shape == (len(freqs), len(times))
    assert abs(freqs[power.mean(axis=1).argmax()] - 1000) <= rate / 400  # one bin of a 25 ms window
    assert power.max() == pytest.approx(0.0)
    assert times[-1] <= 1.0 and len(times) == pytest.approx(100, abs=3)  # 10 ms hop


def test_mfcc_encoder_shapes_gradients_and_bad_input():
    model = audio.build(audio.Config("classifier", width=16))
    x = torch.randn(4, 30, 13, requires_grad=True)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(batch, frames, 13\)"):
        model(torch.randn(4, 13, 30))
    with pytest.raises(ValueError, match="n_classes"):
        audio.Config(n_classes=1)
    with pytest.raises(ValueError, match="unknown kind"):
        audio.Config("transcriber")


def test_transcribe_is_repeatable_whatever_was_heard_before(spoken):
    waveform, rate = spoken
    x = audio.resample(waveform, rate, audio.ASR_RATE)
    first = audio.transcribe(x, audio.ASR_RATE)
    other = audio.resample(audio.synthesize("open the door")[0], rate, audio.ASR_RATE)
    audio.transcribe(other, audio.ASR_RATE)
    assert audio.transcribe(x, audio.ASR_RATE) == first


def test_voice_image_model_embeds_both_modalities_and_trains():
    torch.manual_seed(0)
    model = audio.build(audio.Config("voice_image", dim=16))
    images, recordings = torch.rand(6, 1, 28, 28), torch.randn(6, 48, audio.N_MFCC)
    digits = torch.tensor([0, 1, 2, 0, 1, 2])
    audio_emb, image_emb, scale = model(images, recordings)
    assert audio_emb.shape == image_emb.shape == (6, 16) and scale.item() == pytest.approx(1 / 0.07)
    history = mm.training.fit(model, [(images, recordings, digits)], audio.voice_image_loss, epochs=5,
                              lr=1e-2, verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="one recording per image"):
        model(images[:5], recordings)


def test_the_chapters_models():
    assert audio.build(audio.SPOKEN_DIGITS).out.out_features == 10
    assert audio.build(audio.COMMANDS).out.out_features == len(audio.ACTIONS)
    assert isinstance(audio.build(audio.VOICE_IMAGE), audio.VoiceImageModel)


# --- features from waveforms ---------------------------------------------------------------------

def _chirp():
    """Half a second of a 300 Hz -> 2.3 kHz chirp plus a 3.1 kHz tone at 22,050 Hz."""
    t = np.arange(11_025) / 22_050
    return (0.5 * np.sin(2 * np.pi * (300 + 2000 * t) * t)
            + 0.2 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)


# librosa 0.11.0's librosa.feature.mfcc(y=_chirp(), sr=22050, n_mfcc=13), frames 5 and 12
LIBROSA_FRAME_5 = [-453.8869, 113.6728, 8.9995, -62.2548, -135.4773, -133.226, -31.9641,
                   33.24, 52.7759, 80.0939, 46.6912, -19.5679, -15.5145]
LIBROSA_FRAME_12 = [-487.4532, 28.706, -102.8477, -72.6736, 26.7608, 84.568, 50.9095,
                    -64.4157, -90.5857, 28.0374, 79.69, 5.4632, -36.277]


def test_mfcc_matches_librosa_defaults_the_fsdd_recipe():
    feats = audio.mfcc(_chirp(), 22_050, telephone=False)
    assert feats.shape == (22, 13) and feats.dtype == np.float32   # 1 + 11,025 // 512 frames
    np.testing.assert_allclose(feats[5], LIBROSA_FRAME_5, atol=2e-3)
    np.testing.assert_allclose(feats[12], LIBROSA_FRAME_12, atol=2e-3)


def test_mfcc_accepts_any_rate_and_int16(spoken):
    waveform, rate = spoken
    at_22k = audio.mfcc(waveform, rate)
    at_16k = audio.mfcc(audio.resample(waveform, rate, 16_000), 16_000)
    as_int16 = audio.mfcc(audio._pcm16(waveform), rate)
    assert at_22k.shape[1] == 13 and abs(len(at_16k) - len(at_22k)) <= 1
    assert np.abs(as_int16 - at_22k).max() < 0.5
    n = min(len(at_16k), len(at_22k))
    assert np.abs(at_16k[:n, :4] - at_22k[:n, :4]).mean() < 5.0   # same sound, same features


def test_telephone_band_removes_energy_above_4khz(spoken):
    full, phone = audio.log_mel(spoken[0], spoken[1]), audio.log_mel(spoken[0], spoken[1], telephone=True)
    high = audio._hz_to_mel(4500) / audio._hz_to_mel(11_025) * audio.N_MELS
    at_floor = lambda m: np.mean(m[:, int(high):] <= m.max() - 79.9)   # top_db floor: 80 dB down
    assert at_floor(phone) > 0.9 and at_floor(full) < 0.5, (at_floor(phone), at_floor(full))


def test_mel_filterbank_is_slaney_normalised():
    fb = audio.mel_filterbank()
    assert fb.shape == (128, 1025) and (fb >= 0).all()
    hz = np.linspace(0, 11_025, 1025)
    area = fb.sum(axis=1) * (hz[1] - hz[0])            # slaney norm: each triangle has area 1
    np.testing.assert_allclose(area[5:], 1.0, rtol=0.1)


def test_griffin_lim_gives_back_a_sound_with_that_spectrogram(spoken):
    mel = audio.log_mel(*spoken)
    wave, rate = audio.griffin_lim(mel, n_iter=16)
    again = audio.log_mel(wave, rate)
    assert rate == 22_050 and wave.dtype == np.float32 and np.abs(wave).max() <= 1.0
    n = min(len(mel), len(again))
    rel = lambda m: m - m.max()
    assert np.abs(rel(again[:n]) - rel(mel[:n])).mean() < 6.0   # dB, on an 80 dB range
    with pytest.raises(ValueError, match="log_mel"):
        audio.griffin_lim(mel[:, :13])


@pytest.mark.parametrize("bad, rate, message", [
    (np.zeros((1000, 2), np.float32), 22_050, "mix stereo"),
    (np.zeros(0, np.float32), 22_050, "empty"),
    (np.zeros(1000, np.int32), 22_050, "int32 PCM"),
    (np.full(1000, 2000.0, np.float32), 22_050, "Divide by 32768"),
    (np.full(1000, np.nan, np.float32), 22_050, "NaN"),
    (np.zeros(1000, np.float32), 22.05, "positive int"),
    (np.zeros(1000, np.float32), 22, "in Hz"),
])
def test_mfcc_rejects_bad_audio_saying_how_to_fix_it(bad, rate, message):
    with pytest.raises(ValueError, match=message):
        audio.mfcc(bad, rate)


# --- voice commands ------------------------------------------------------------------------------

def test_every_command_phrase_parses_to_its_action():
    phrases = audio.command_phrases()
    assert len(phrases) == 63 and {a for _, a in phrases} == set(audio.ACTIONS)
    assert all(audio.parse_command(text) == action for text, action in phrases)


@pytest.mark.parametrize("transcript, action", [
    ("Show me a 7.", ("show", 7)), ("Add, uh, three!", ("add", 3)), ("plus nine", ("add", 9)),
    ("Start again.", ("clear", None)), ("show me the money", None), ("hello there", None),
    ("seven", None),
])
def test_parse_command_reads_verb_and_digit_from_a_transcript(transcript, action):
    assert audio.parse_command(transcript) == action


def test_digit_board_executes_show_add_clear():
    board = audio.DigitBoard(capacity=3)
    assert board.apply(("show", 4)) == [4]
    assert board.apply(("add", 2)) == [4, 2]
    assert board.apply(None) == [4, 2]                        # not understood: nothing happens
    board.apply(("add", 1)), board.apply(("add", 9))
    assert board.digits == [4, 2, 1]                         # full board keeps its digits
    assert board.apply(("clear", None)) == []
    with pytest.raises(ValueError, match="ACTIONS"):
        board.apply(("jump", 3))


def test_spoken_commands_gives_one_padded_row_per_phrase_and_voice():
    x, y, texts, voices = audio.spoken_commands(["en-us"], frames=64)
    assert x.shape == (63, 64, 13) and y.shape == (63,) and len(texts) == len(voices) == 63
    assert [audio.ACTIONS[k] for k in y] == [audio.parse_command(t) for t in texts]


def test_resample_of_a_full_scale_waveform_is_still_a_waveform():
    rate = 22050  # a square wave at full scale: the anti-aliasing filter's ripple overshoots 1
    square = np.sign(np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    assert np.abs(audio._resample(square, rate, audio.ASR_RATE)).max() > 1.0
    out = audio.resample(square, rate, audio.ASR_RATE)
    assert np.abs(out).max() == pytest.approx(1.0)
    audio.as_waveform(out, audio.ASR_RATE)  # accepted as it is, by every function here
