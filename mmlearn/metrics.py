"""Metrics shared by the chapters, on NumPy arrays or tensors."""

from __future__ import annotations

import numpy as np


def _labels(values) -> np.ndarray:
    """Class labels from labels (N,) or scores/logits/probabilities (N, C)."""
    values = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
    return values.argmax(axis=1) if values.ndim == 2 else values.astype(np.int64)


def accuracy(predictions, targets) -> float:
    """Share of correct predictions; ``predictions`` are labels (N,) or scores (N, C)."""
    pred, true = _labels(predictions), _labels(targets)
    if pred.shape != true.shape:
        raise ValueError(f"predictions give {pred.shape[0]} labels but targets {true.shape[0]}")
    return float((pred == true).mean())


def confusion_matrix(predictions, targets, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    pred, true = _labels(predictions), _labels(targets)
    if pred.shape != true.shape:
        raise ValueError(f"predictions give {pred.shape[0]} labels but targets {true.shape[0]}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix
