"""mmlearn: the models, data and helpers behind the executable book on multimodal deep learning.

``import mmlearn`` first sizes the thread pools, silences TensorFlow's start-up noise and
loads the PyTorch side, so TensorFlow, torchvision and transformers may then be imported in
any order (see ``mmlearn/_frameworks.py`` for why the order matters).
"""

from mmlearn import _frameworks  # noqa: F401  (must stay the first import)
from mmlearn import data, metrics, plots, source, training
from mmlearn.config import (PROFILES, RunSize, configure_tensorflow, get_device, get_profile,
                            run_size, seed_everything, setup)

__version__ = "0.1.0"

__all__ = ["PROFILES", "RunSize", "configure_tensorflow", "data", "get_device", "get_profile", "metrics",
           "plots", "run_size", "seed_everything", "setup", "source", "training", "__version__"]
