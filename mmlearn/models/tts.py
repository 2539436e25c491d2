"""A small learned text-to-speech model: characters in, mel spectrogram out, Griffin-Lim to hear it.

The network is Part I's decoder turned sideways: where the image decoder doubles a picture's
height and width with transposed convolutions (反卷积), :class:`TextToMel` doubles a sequence's
length twice, so each character becomes :data:`FRAMES_PER_CHAR` mel frames (23 ms each). It is
trained on eSpeak NG's speech of single English words, a teacher it can at best imitate; its
spectrograms go back to sound with :func:`mmlearn.models.audio.griffin_lim`, no neural vocoder.

A fixed number of frames per character is the crudest alignment there is: eSpeak's spectrogram
of each word is stretched or squeezed in time to ``len(word) * FRAMES_PER_CHAR`` frames, and
:func:`speak` squeezes the result back to a natural length. Real systems learn durations
(FastSpeech) or attention (Tacotron); the point here is the decoder.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mmlearn.models import audio
from mmlearn.operators import same_padding

CHARS = "abcdefghijklmnopqrstuvwxyz'"   # id 0 is padding, so character i has id i + 1
FRAMES_PER_CHAR = 4                     # two transposed convolutions, each doubling the length
SILENCE_DB = 50.0                       # frames this far below a word's loudest are trimmed
N_MELS = audio.N_MELS


# --- text and targets ----------------------------------------------------------------------------

def encode(word: str) -> np.ndarray:
    """int64 character ids (1..27) of a lower-case word of letters and apostrophes."""
    if not isinstance(word, str) or not word:
        raise ValueError(f"expected a non-empty word, got {word!r}")
    unknown = sorted(set(word) - set(CHARS))
    if unknown:
        raise ValueError(f"{word!r} has characters the model has no embedding for: {unknown}; "
                         f"write numbers as words and use lower-case letters a-z and ' only")
    return np.array([CHARS.index(c) + 1 for c in word], dtype=np.int64)


def word_pool(n: int) -> list[str]:
    """The ``n`` most frequent whole English words of 3 to 7 letters in the bundled BERT
    vocabulary (WordPiece lists words roughly by frequency), skipping its first 2,000 entries
    (special tokens, characters and sub-words)."""
    from mmlearn.data import text_model_path

    with open(text_model_path() / "vocab.txt", encoding="utf-8") as f:
        entries = [line.strip() for line in f][2000:]
    words = [w for w in entries if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 7]
    if n > len(words):
        raise ValueError(f"the vocabulary has only {len(words)} such words, asked for {n}")
    return words[:n]


def trimmed_log_mel(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, 128) log-mel in dB of a waveform, with the silent frames at both ends cut."""
    mel = audio.log_mel(waveform, sample_rate)
    loud = np.flatnonzero(mel.max(axis=1) > mel.max() - SILENCE_DB)
    return mel[loud[0]:loud[-1] + 1]


def to_unit(mel_db: np.ndarray) -> np.ndarray:
    """dB (at most 80 below the loudest bin) -> [0, 1], the loudest bin at 1."""
    return np.clip((mel_db - mel_db.max()) / 80.0 + 1.0, 0.0, 1.0).astype(np.float32)


def resize_frames(mel: np.ndarray, frames: int) -> np.ndarray:
    """(T, 128) -> (frames, 128) by linear interpolation along time."""
    x = torch.from_numpy(np.ascontiguousarray(mel.T))[None]          # (1, 128, T)
    return F.interpolate(x, size=frames, mode="linear", align_corners=True)[0].T.numpy()


@dataclasses.dataclass(frozen=True)
class MelData:
    """Words spoken by eSpeak voices as training pairs for :class:`TextToMel`.

    ``ids``: int64 (N, L) character ids, 0-padded; ``voice``: int64 (N,) index into ``voices``;
    ``mel``: float32 (N, L * FRAMES_PER_CHAR, 128) in [0, 1]; ``mask``: float32
    (N, L * FRAMES_PER_CHAR), 1 on a word's frames; ``frames``: int64 (N,) eSpeak's own length.
    """

    words: list[str]
    voices: list[str]
    ids: np.ndarray
    voice: np.ndarray
    mel: np.ndarray
    mask: np.ndarray
    frames: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in (self.ids, self.voice, self.mel, self.mask))


def espeak_mels(words, voices) -> MelData:
    """eSpeak's speech of every word in every voice, as :class:`MelData` (one row per pair)."""
    words, voices = list(words), list(voices)
    if not words or not voices:
        raise ValueError("espeak_mels needs at least one word and one voice")
    longest = max(len(w) for w in words)
    rows = [(w, v) for v in range(len(voices)) for w in words]
    ids = np.zeros((len(rows), longest), dtype=np.int64)
    mel = np.zeros((len(rows), longest * FRAMES_PER_CHAR, N_MELS), dtype=np.float32)
    mask = np.zeros((len(rows), longest * FRAMES_PER_CHAR), dtype=np.float32)
    frames = np.zeros(len(rows), dtype=np.int64)
    for i, (word, v) in enumerate(rows):
        spoken = trimmed_log_mel(*audio.synthesize(word, voice=voices[v]))
        n = len(word) * FRAMES_PER_CHAR
        ids[i, :len(word)] = encode(word)
        mel[i, :n] = resize_frames(to_unit(spoken), n)
        mask[i, :n] = 1.0
        frames[i] = len(spoken)
    voice = np.array([v for _, v in rows], dtype=np.int64)
    return MelData([w for w, _ in rows], voices, ids, voice, mel, mask, frames)


# --- the network -------------------------------------------------------------------------------

class Deconv1dBlock(nn.Sequential):
    """ConvTranspose1d -> BatchNorm -> ReLU: Part I's ``DeconvBlock`` on a sequence.

    ``(B, in_channels, L) -> (B, out_channels, L * stride)``, with the same "same" padding
    arithmetic (``mmlearn.operators.same_padding``) as the 2-D block.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2):
        super().__init__(
            nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride,
                               padding=same_padding(kernel_size, stride)),
            nn.BatchNorm1d(out_channels), nn.ReLU())


class TextToMel(nn.Module):
    """Character ids (B, L) and a voice index (B,) -> mel frames (B, L * 4, 128) in [0, 1].

    Embeddings of characters plus the voice, two convolutions that let each character see
    its neighbours (about five letters each side, enough for "ch", "tion", a silent "e"),
    two transposed convolutions that upsample 1 -> 2 -> 4 frames per character, and a
    convolution to the 128 mel bands.
    """

    def __init__(self, n_voices: int = 1, width: int = 192):
        super().__init__()
        self.n_voices = n_voices
        self.chars = nn.Embedding(len(CHARS) + 1, width, padding_idx=0)
        self.voice = nn.Embedding(n_voices, width)
        self.context = nn.Sequential(
            nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU())
        self.upsample = nn.Sequential(Deconv1dBlock(width, width), Deconv1dBlock(width, width // 2))
        self.out = nn.Conv1d(width // 2, N_MELS, 5, padding=2)

    def forward(self, ids: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.dtype != torch.int64:
            raise ValueError(f"expected int64 character ids of shape (batch, letters), got "
                             f"{tuple(ids.shape)} {ids.dtype}; make them with mmlearn.models.tts.encode")
        if voice.shape != ids.shape[:1] or int(voice.max()) >= self.n_voices or int(voice.min()) < 0:
            raise ValueError(f"expected one voice index in 0..{self.n_voices - 1} per word")
        h = self.chars(ids) + self.voice(voice)[:, None]       # (B, L, width)
        h = self.context(h.transpose(1, 2))                    # (B, width, L)
        h = self.upsample(h)                                   # (B, width, L) -> (B, width/2, 4L)
        return torch.sigmoid(self.out(h)).transpose(1, 2)      # (B, 4L, 128)


@dataclasses.dataclass(frozen=True)
class Config:
    """The text-to-mel network: how many voices it speaks in, and its width."""

    n_voices: int = 1
    width: int = 192


VOICES = ("en-us", "en")                 # the eSpeak NG voices chapter II.5e learns from
TWO_VOICES = Config(n_voices=len(VOICES))  # chapter II.5e's network


def build(config: Config) -> TextToMel:
    """A fresh text-to-mel network."""
    return TextToMel(config.n_voices, config.width)


def mel_loss(model: nn.Module, batch) -> torch.Tensor:
    """``loss_fn`` for ``training.fit`` on (ids, voice, mel, mask): mean absolute error over
    the frames that belong to a word (padding frames do not count)."""
    ids, voice, mel, mask = batch
    error = (model(ids, voice) - mel).abs().mean(dim=2)        # (B, frames)
    return (error * mask).sum() / mask.sum()


@torch.no_grad()
def masked_l1(model: nn.Module, data: MelData) -> float:
    """Mean absolute error of ``model`` on ``data``'s word frames, in eval mode."""
    model.eval()
    return float(mel_loss(model, data.tensors()))


# --- from text to sound -----------------------------------------------------------------------------

@torch.no_grad()
def speak(model: TextToMel, text: str, voice: int = 0, frames_per_char: float = 4.4,
          pause_frames: int = 6, n_iter: int = 32) -> tuple[np.ndarray, int]:
    """``model``'s speech of ``text`` (words separated by spaces) at 22,050 Hz.

    Each word's mel frames are resampled in time to ``frames_per_char`` per letter (eSpeak's
    average at 160 words per minute is about 4.4), the words are joined by ``pause_frames``
    silent frames (23 ms each), and Griffin-Lim turns the whole spectrogram into sound.
    """
    words = str(text).lower().split()
    if not words:
        raise ValueError(f"expected text with at least one word, got {text!r}")
    model.eval()
    pieces = []
    for word in words:
        ids = torch.from_numpy(encode(word))[None]
        unit = model(ids, torch.tensor([voice]))[0].numpy()                 # (4L, 128) in [0, 1]
        pieces += [resize_frames(unit, max(2, int(round(len(word) * frames_per_char)))),
                   np.zeros((pause_frames, N_MELS), dtype=np.float32)]
    return audio.griffin_lim((np.concatenate(pieces[:-1]) - 1.0) * 80.0, n_iter=n_iter)
