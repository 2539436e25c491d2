"""CIFAR-10 from Keras' cache or the web, or an offline stand-in made of MNIST-5k digits."""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from mmlearn.data.digits import DIGIT_CLASSES, ImageDataset, load_mnist5k
from mmlearn.data.store import (CHECKSUMS, NETWORK_TIMEOUT_S, ONLINE_VARIABLE, DataError, cached_arrays,
                                download_file, host_port, host_reachable, online, verified)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


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
