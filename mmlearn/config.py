"""Run configuration: the profile, the device, the seed.

One environment variable, ``MMLEARN_PROFILE``, sizes every run in the book:

* ``smoke``: tiny subsets and one short epoch, so CI executes the whole book in minutes;
* ``standard`` (the default): what the stored outputs show, a few minutes a chapter on a
  2-core CPU;
* ``full``: the source articles' own settings, for a GPU.

Every experiment's sizes live in :data:`SIZES` below and nowhere else.

A second variable, ``MMLEARN_DRY_RUN``, tries a profile's settings and code paths without paying
for them: with ``MMLEARN_DRY_RUN=1``, :func:`run_size` cuts every experiment to at most
:data:`DRY_RUN_STEPS` batches of training and test data (and never fewer than
:data:`DRY_RUN_MIN_ROWS` rows unless the profile asks for fewer) and to at most one epoch, while the
batch size and everything else stay the profile's (but for the one network too slow per step on
a CPU, tried at the small batch of :data:`DRY_RUN_BATCH_SIZE`). Every training loop in the book,
``fit`` here, Keras' ``fit`` and the chapters' own loops alike, is sized by :func:`run_size`, so
this one place cuts them all. ``MMLEARN_PROFILE=full MMLEARN_DRY_RUN=1`` is how CI runs the ``full``
profile on a CPU (``python3 tasks.py dry-run``). The checks of the book's results cannot hold
after a few steps; the test runner evaluates, but does not enforce, the asserts whose outcome depends on the
profile (``tests/notebook_claims.py``). ``0`` or unset means no dry run; any other value is an error.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys

import numpy as np
import torch

from mmlearn._frameworks import THREADS

PROFILES = ("smoke", "standard", "full")
DEFAULT_PROFILE = "standard"


@dataclasses.dataclass(frozen=True)
class RunSize:
    """How much data and training one experiment gets under the active profile.

    ``n_train`` / ``n_test`` of ``None`` mean "all of it". ``n_val``: validation examples cut
    from the training split for the per-epoch curves (0: none), so the test split is used once.
    ``n_seeds``: training runs that differ only in their seed, for an experiment that reports
    its spread over seeds.
    """

    n_train: int | None
    n_test: int | None
    epochs: int
    batch_size: int
    n_val: int = 0
    n_seeds: int = 1


# experiment -> profile -> size. Add a row here when a chapter needs a new experiment.
SIZES: dict[str, dict[str, RunSize]] = {
    # Part I, chapter 1: a first look at fusion with linear classifiers.
    "background.fusion": {
        "smoke": RunSize(n_train=600, n_test=300, epochs=1, batch_size=64),
        "standard": RunSize(n_train=None, n_test=None, epochs=1, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=1, batch_size=64),
    },
    # --- Part I, chapters 2-5: transposed convolution, the article's and the formula network ---
    # Timing the article's 84M-parameter network: n_train = images timed (steps x batch_size).
    "deconv.article_timing": {
        "smoke": RunSize(n_train=1, n_test=None, epochs=1, batch_size=1),
        "standard": RunSize(n_train=16, n_test=None, epochs=1, batch_size=8),
        "full": RunSize(n_train=640, n_test=None, epochs=1, batch_size=64),
    },
    # Training it: epochs=0 means "not trained" (several seconds a step on a 2-core CPU).
    "deconv.article_train": {
        "smoke": RunSize(n_train=0, n_test=0, epochs=0, batch_size=64),
        "standard": RunSize(n_train=0, n_test=0, epochs=0, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=50, batch_size=64, n_val=5_000),
    },
    "deconv.formula": {  # n_val: from the end of the training split (the stand-in has 4,000 images)
        "smoke": RunSize(n_train=1024, n_test=256, epochs=1, batch_size=32, n_val=256),
        "standard": RunSize(n_train=10_000, n_test=2_000, epochs=10, batch_size=64, n_val=400),
        "full": RunSize(n_train=None, n_test=None, epochs=50, batch_size=64, n_val=5_000),
    },
    # Chapter 4's ablations, 3 seeds each: n_train = training images (the rest of the training
    # split), n_test = validation images cut from the training split, epochs = passes over n_train.
    "deconv.ablation": {  # FormulaNet with / without c_R; a small pooled ArticleNet, stride 2 / 1
        "smoke": RunSize(n_train=256, n_test=128, epochs=1, batch_size=32),
        "standard": RunSize(n_train=3000, n_test=1000, epochs=1, batch_size=32),
        "full": RunSize(n_train=None, n_test=5000, epochs=10, batch_size=64),
    },
    # Chapter 5: a FormulaNet whose Dense layer reads a 4x4x32 map, trained in Keras, copied over.
    "deconv.flatten_copy": {
        "smoke": RunSize(n_train=512, n_test=256, epochs=1, batch_size=32),
        "standard": RunSize(n_train=None, n_test=None, epochs=2, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=64),
    },
    # Chapter 7: small decoders (transposed 3x3 / 4x4, resize-conv) trained to redraw digits.
    "outlook.checkerboard": {
        "smoke": RunSize(n_train=512, n_test=128, epochs=1, batch_size=64),
        "standard": RunSize(n_train=2000, n_test=500, epochs=2, batch_size=64),
        "full": RunSize(n_train=2000, n_test=None, epochs=2, batch_size=64),  # brief on purpose
    },
    # --- Part I, chapters 6-8: multimodal fusion, outlook, FAQ ---
    # Fusion of digit images and spoken digits: each of 4 models trained once per seed (3 seeds).
    "fusion.compare": {  # n_val: cut from the 4,000 training pairs
        "smoke": RunSize(n_train=512, n_test=256, epochs=1, batch_size=64, n_val=128),
        "standard": RunSize(n_train=None, n_test=None, epochs=5, batch_size=64, n_val=400),
        "full": RunSize(n_train=None, n_test=None, epochs=20, batch_size=64, n_val=400),
    },
    # Chapter 7: the image model whose units are visualised (clean MNIST-5k).
    "outlook.visualise": {
        "smoke": RunSize(n_train=512, n_test=256, epochs=1, batch_size=64, n_val=128),
        "standard": RunSize(n_train=None, n_test=None, epochs=4, batch_size=64, n_val=400),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=64, n_val=400),
    },
    # --- Part II, chapters 1-4: joint embedding, attention, the image-text pipeline ---
    "concepts.fusion": {  # easy-VQA questions for the linear fusion comparison
        "smoke": RunSize(n_train=2000, n_test=1000, epochs=1, batch_size=1),
        "standard": RunSize(n_train=None, n_test=None, epochs=1, batch_size=1),
        "full": RunSize(n_train=None, n_test=None, epochs=1, batch_size=1),
    },
    # ResNet18 (small stem) + a frozen text tower (BERT if on disk, else MiniLM), 32 px; 3 seeds, 6 classes held out
    "image_text.contrastive": {
        "smoke": RunSize(n_train=128, n_test=100, epochs=1, batch_size=32),
        "standard": RunSize(n_train=None, n_test=None, epochs=4, batch_size=32),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=64),
    },
    "annotation.contrastive": {  # ch. 5a: two-tower model and tag classifier, 3 seeds each, on the
        "smoke": RunSize(n_train=256, n_test=200, epochs=1, batch_size=32),   # 3,500 train pictures
        "standard": RunSize(n_train=None, n_test=None, epochs=6, batch_size=32),  # kept out of validation
        "full": RunSize(n_train=None, n_test=None, epochs=20, batch_size=64),
    },
    "outlook.gap": {  # ch. 7: chapter 4's recipe on all pairs, then on 1/16 and 1/4 of them
        "smoke": RunSize(n_train=96, n_test=100, epochs=1, batch_size=32),
        "standard": RunSize(n_train=None, n_test=None, epochs=4, batch_size=32),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=64),
    },
    # --- Part II, chapters 5-8: applications, tools, outlook, FAQ ---
    "vqa.tower": {  # stage 1: the image tower names colour and shape of 4,000 train pictures
        "smoke": RunSize(n_train=600, n_test=None, epochs=1, batch_size=64),
        "standard": RunSize(n_train=None, n_test=None, epochs=2, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=5, batch_size=64),
    },
    "vqa.train": {  # stage 2, per seed and variant; of the 33,833 questions on 3,500 train pictures
        "smoke": RunSize(n_train=3000, n_test=1000, epochs=1, batch_size=32),   # (batch = pictures)
        "standard": RunSize(n_train=16_000, n_test=None, epochs=4, batch_size=32),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=32),
    },
    "generation.judge": {  # classifier of colour and shape on real 32 px pictures (4,000 train)
        "smoke": RunSize(n_train=600, n_test=None, epochs=1, batch_size=64),
        "standard": RunSize(n_train=None, n_test=None, epochs=2, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=10, batch_size=64),
    },
    "generation.regression": {  # the pixel-regression baseline (MSE)
        "smoke": RunSize(n_train=600, n_test=5, epochs=1, batch_size=32),
        "standard": RunSize(n_train=None, n_test=20, epochs=5, batch_size=32),
        "full": RunSize(n_train=None, n_test=100, epochs=20, batch_size=64),
    },
    # the conditional VAE; n_test = generated pictures per caption (x24); n_val: the last training
    # pictures, held out for the validation loss that picks the epoch whose weights are kept. One
    # seed takes about 200 s on two CPU cores, so standard trains one and full the three reported
    "generation.generator": {
        "smoke": RunSize(n_train=600, n_test=5, epochs=1, batch_size=32, n_val=100),
        "standard": RunSize(n_train=None, n_test=20, epochs=80, batch_size=32, n_val=400),
        "full": RunSize(n_train=None, n_test=100, epochs=80, batch_size=32, n_val=400, n_seeds=3),
    },
    "speech.digits": {  # spoken-digit classifier on FSDD MFCCs (2,400 train / 600 test)
        "smoke": RunSize(n_train=600, n_test=200, epochs=1, batch_size=64),
        "standard": RunSize(n_train=None, n_test=None, epochs=4, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=20, batch_size=64),
    },
    "speech.noise": {  # ch. II.5d: utterances x 5 SNRs x 2 noise draws x 2 recognisers (not trained)
        "smoke": RunSize(n_train=None, n_test=2, epochs=0, batch_size=1),
        "standard": RunSize(n_train=None, n_test=4, epochs=0, batch_size=1),
        "full": RunSize(n_train=None, n_test=8, epochs=0, batch_size=1),
    },
    "speech.ctc": {  # ch. II.5d: CTC digit strings, 3 seeds; n_test = held-out-voice (and val) strings
        "smoke": RunSize(n_train=96, n_test=48, epochs=1, batch_size=16),
        "standard": RunSize(n_train=600, n_test=300, epochs=5, batch_size=16),
        "full": RunSize(n_train=4000, n_test=1000, epochs=30, batch_size=32),
    },
    "voice.retrieval": {  # spoken digit -> handwritten digit images, contrastive joint space
        "smoke": RunSize(n_train=500, n_test=200, epochs=1, batch_size=100),
        "standard": RunSize(n_train=None, n_test=None, epochs=3, batch_size=100),
        "full": RunSize(n_train=None, n_test=None, epochs=30, batch_size=100),
    },
    "voice.commands": {  # spoken-command classifier (756 train utterances); n_test for Whisper
        "smoke": RunSize(n_train=None, n_test=8, epochs=2, batch_size=32),
        "standard": RunSize(n_train=None, n_test=63, epochs=20, batch_size=32),
        "full": RunSize(n_train=None, n_test=189, epochs=40, batch_size=32),
    },
    "tts.mel": {  # text -> mel model per seed; n_train words (x2 voices), n_test words judged
        "smoke": RunSize(n_train=150, n_test=10, epochs=2, batch_size=32),
        "standard": RunSize(n_train=800, n_test=100, epochs=14, batch_size=32),
        "full": RunSize(n_train=3000, n_test=500, epochs=40, batch_size=32),
    },
    # --- Appendix: scaling out (data-parallel training) ---
    "scaling.formula": {  # FormulaNet, one process vs two under torchrun, and Keras mirrored
        "smoke": RunSize(n_train=512, n_test=256, epochs=1, batch_size=64),
        "standard": RunSize(n_train=4000, n_test=1000, epochs=3, batch_size=64),
        "full": RunSize(n_train=None, n_test=None, epochs=50, batch_size=64),
    },
    "scaling.contrastive": {  # one batch of 32 image-caption pairs, checked and trained on
        "smoke": RunSize(n_train=32, n_test=None, epochs=1, batch_size=16),
        "standard": RunSize(n_train=32, n_test=None, epochs=3, batch_size=16),
        "full": RunSize(n_train=32, n_test=None, epochs=3, batch_size=16),
    },
}


def get_profile() -> str:
    """The active profile, from ``MMLEARN_PROFILE`` (default ``standard``)."""
    name = os.environ.get("MMLEARN_PROFILE", DEFAULT_PROFILE).strip().lower() or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"MMLEARN_PROFILE={name!r} is not a profile. Use one of "
                         f"{', '.join(PROFILES)}, for example: MMLEARN_PROFILE=smoke")
    return name


def run_size(experiment: str, profile: str | None = None) -> RunSize:
    """Sizes of ``experiment`` under ``profile`` (default: the active profile).

    For the active profile in a dry run (``MMLEARN_DRY_RUN=1``) the sizes are cut down by
    :func:`dry_run_size`; a profile named explicitly returns its row of :data:`SIZES` as written,
    which is what a chapter quoting the table wants.
    """
    active = profile is None
    profile = get_profile() if active else profile
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if experiment not in SIZES:
        raise KeyError(f"no sizes are defined for experiment {experiment!r}; known experiments: "
                       f"{', '.join(sorted(SIZES))}. Add a row to mmlearn.config.SIZES.")
    size = SIZES[experiment][profile]
    return dry_run_size(size, experiment) if active and dry_run() else size


# --- dry run: a profile's settings, each loop cut to a few steps -------------------------------

DRY_RUN_STEPS = 2        # batches of training (and of test) data per experiment in a dry run
DRY_RUN_MIN_ROWS = 128   # ... but at least this many rows, for experiments sized in batches of 1
# The one exception to "the profile's batch size": the article's network (84M parameters,
# 256x256x128 activations) takes about a minute per step at batch 64 on a CPU core, more than the
# whole dry run can spend, so a dry run tries its code at this batch. Whether the profile's batch
# fits in memory is for batch_that_fits (below; deconv and deconv_keras) to judge.
DRY_RUN_BATCH_SIZE = {"deconv.article_timing": 4, "deconv.article_train": 4}


def dry_run() -> bool:
    """Whether ``MMLEARN_DRY_RUN`` asks for a dry run (``1``); ``0`` or unset: no."""
    value = os.environ.get("MMLEARN_DRY_RUN", "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(f"MMLEARN_DRY_RUN={value!r} is not a switch. Use MMLEARN_DRY_RUN=1 to cut every "
                     "training loop to a few steps, or 0 (or leave it unset) to run at the profile's sizes")


def dry_run_size(size: RunSize, experiment: str | None = None) -> RunSize:
    """``size`` cut to a dry run's: at most :data:`DRY_RUN_STEPS` batches of training and of test
    data (at least :data:`DRY_RUN_MIN_ROWS` rows, or what ``size`` asks if that is fewer) and at
    most one epoch; an experiment not trained (``epochs=0``) stays so. The number of seeds is
    kept, and so is the batch size, except for the experiments of :data:`DRY_RUN_BATCH_SIZE`,
    which get exactly :data:`DRY_RUN_STEPS` batches of that size."""
    if experiment in DRY_RUN_BATCH_SIZE:
        batch = min(size.batch_size, DRY_RUN_BATCH_SIZE[experiment])
        rows = DRY_RUN_STEPS * batch
    else:
        batch, rows = size.batch_size, max(DRY_RUN_STEPS * size.batch_size, DRY_RUN_MIN_ROWS)
    return RunSize(n_train=rows if size.n_train is None else min(size.n_train, rows),
                   n_test=rows if size.n_test is None else min(size.n_test, rows),
                   epochs=min(size.epochs, 1), batch_size=batch, n_val=min(size.n_val, rows),
                   n_seeds=size.n_seeds)


def get_device() -> torch.device:
    """The accelerator to use: CUDA, then Apple MPS, then the CPU.

    ``MMLEARN_DEVICE`` (``cuda``, ``mps`` or ``cpu``) overrides the choice. TensorFlow is told
    the same choice by :func:`configure_tensorflow`.
    """
    wanted = os.environ.get("MMLEARN_DEVICE", "").strip().lower()
    available = {"cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available(),
                 "cpu": True}
    if wanted:
        if wanted not in available:
            raise ValueError(f"MMLEARN_DEVICE={wanted!r} is not a device; use cuda, mps or cpu")
        if not available[wanted]:
            raise RuntimeError(f"MMLEARN_DEVICE={wanted!r} was asked for, but this machine has no "
                               f"{wanted} device; unset MMLEARN_DEVICE to choose automatically")
        return torch.device(wanted)
    return torch.device(next(name for name, ok in available.items() if ok))


def configure_tensorflow():
    """Import TensorFlow with the book's settings and return the module.

    TensorFlow gets the same device as PyTorch: when PyTorch runs on the CPU, TensorFlow's GPUs
    are hidden from it. Its Python logger keeps only errors (``tf.distribute`` logs every
    all-reduce at INFO level).
    """
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")

    if get_device().type == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow already initialised its devices in this process
            pass
    return tf


def seed_everything(seed: int = 0) -> None:
    """Make a run repeatable on the same machine: Python, NumPy, PyTorch and TensorFlow."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        tf.keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass(frozen=True)
class RunInfo:
    profile: str
    device: torch.device
    threads: int
    seed: int
    dry_run: bool = False

    def __str__(self) -> str:
        profile = f"{self.profile} (dry run: a few steps per loop)" if self.dry_run else self.profile
        return (f"profile: {profile} | device: {self.device.type} | "
                f"threads: {self.threads} | seed: {self.seed}")


def setup(seed: int = 0, tensorflow: bool = False) -> RunInfo:
    """The one call at the top of every chapter: seed, pick the device, print the settings.

    With ``tensorflow=True`` TensorFlow is imported and configured too, so that its seed and
    device follow the same choice.
    """
    if tensorflow:
        configure_tensorflow()
    seed_everything(seed)
    info = RunInfo(profile=get_profile(), device=get_device(), threads=THREADS, seed=seed,
                   dry_run=dry_run())
    print(info)
    return info


# --- memory available to this process ---------------------------------------------------------

_CGROUP = "/sys/fs/cgroup"
_MEMINFO = "/proc/meminfo"


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _read_number(path: str) -> int | None:
    """The integer in a one-number file such as ``memory.max``; None for "max", absent or odd."""
    text = (_read_text(path) or "").strip()
    return int(text) if text.isdigit() else None


def available_memory_bytes() -> int | None:
    """Bytes this process can still allocate: the smallest of what its cgroup's limit leaves
    (v2 ``memory.max`` minus ``memory.current``, v1 ``memory.limit_in_bytes`` minus
    ``memory.usage_in_bytes``; a container's or Binder's limit) and what the machine has free
    (``MemAvailable`` in ``/proc/meminfo``, or ``os.sysconf`` on macOS). None when unknown."""
    figures = []
    for limit, used in (("memory.max", "memory.current"),
                        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        cap, now = _read_number(f"{_CGROUP}/{limit}"), _read_number(f"{_CGROUP}/{used}")
        if cap is not None and now is not None and cap < 1 << 60:  # v1 writes "no limit" as ~2**63
            figures.append(max(0, cap - now))
    for line in (_read_text(_MEMINFO) or "").splitlines():
        fields = line.split()
        if fields[:1] == ["MemAvailable:"] and len(fields) > 1 and fields[1].isdigit():
            figures.append(int(fields[1]) * 1024)
    if not figures:
        try:
            pages = os.sysconf("SC_AVPHYS_PAGES" if "SC_AVPHYS_PAGES" in os.sysconf_names else "SC_PHYS_PAGES")
            figures.append(pages * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    return min(figures) if figures else None


def batch_that_fits(batch_size: int, bytes_for_batch, what: str = "this step",
                    available: int | None = None) -> int:
    """``batch_size``, halved until ``bytes_for_batch(batch)`` fits in the memory available
    (:func:`available_memory_bytes` unless ``available`` is given), and never below 1. Prints
    one line when it has to shrink; the batch is kept when the figure is unknown."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if available is None:
        available = available_memory_bytes()
    if available is None:
        return batch_size
    batch = batch_size
    while batch > 1 and bytes_for_batch(batch) > available:
        batch //= 2
    if batch < batch_size:
        fits = "fits" if bytes_for_batch(batch) <= available else "may still not fit"
        print(f"Memory is short ({available / 1e9:.1f} GB free): {what} at batch {batch_size} needs "
              f"about {bytes_for_batch(batch_size) / 1e9:.1f} GB, so it runs at batch {batch}, "
              f"which {fits} ({bytes_for_batch(batch) / 1e9:.1f} GB).")
    return batch
