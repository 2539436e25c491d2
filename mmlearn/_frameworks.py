"""Framework start-up: thread counts, TensorFlow's log noise, and the import-order guard.

This module runs first, from ``mmlearn/__init__.py``. Two facts drive it:

* TensorFlow imported *before* triton (which torchvision, ``torch.compile`` and transformers'
  BERT pull in) crashes the process with a segfault: both ship their own LLVM. Importing the
  PyTorch side first is safe, so ``import mmlearn`` loads torch and triton straight away and
  the reader may import TensorFlow, torchvision and transformers afterwards in any order.
* Two cores shared by two frameworks that each start one thread per core run many times
  slower than one framework on its own. All thread pools are sized here, once, before either
  framework reads its settings.
"""

from __future__ import annotations

import importlib.util
import os
import warnings


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _thread_count() -> int:
    raw = os.environ.get("MMLEARN_THREADS")
    if raw is None:
        return _cpu_count()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"MMLEARN_THREADS={raw!r} is not a positive integer; "
                         "set it to the number of CPU threads to use, e.g. MMLEARN_THREADS=2")
    return int(raw)


THREADS = _thread_count()

# TensorFlow reads these when it is first imported; the reader's own settings win. Level 3
# also hides a C++ "error" that op determinism (seed_everything) triggers in every Keras fit
# ("NodeDef mentions attribute use_unbounded_threadpool"); real failures still raise in Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(THREADS))
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# tqdm warns once per process when Jupyter has no widget support; the text progress bar is fine.
warnings.filterwarnings("ignore", message="IProgress not found")

import torch  # noqa: E402  (must come after the environment above)

torch.set_num_threads(THREADS)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set by an earlier import in this process
    pass

# The guard itself: with triton loaded before TensorFlow, their LLVMs no longer clash.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: E402,F401
