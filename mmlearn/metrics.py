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


def recall_at_k(similarity, query_labels, item_labels, ks=(1, 5, 10)) -> dict[int, float]:
    """Retrieval Recall@K: for each query (a row of ``similarity``, (Q, I)), is at least one of
    its K most similar items a hit, i.e. an item whose label equals the query's label?

    For exact-pair retrieval pass ``query_labels = item_labels = arange(N)``.
    """
    sim = np.asarray(similarity.detach().cpu() if hasattr(similarity, "detach") else similarity)
    q, i = np.asarray(query_labels), np.asarray(item_labels)
    if sim.shape != (len(q), len(i)):
        raise ValueError(f"similarity has shape {sim.shape}; expected (queries, items) = "
                         f"({len(q)}, {len(i)})")
    order = np.argsort(-sim, axis=1, kind="stable")
    hits = i[order] == q[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}


def chance_recall_at_k(query_labels, item_labels, ks=(1, 5, 10)) -> dict[int, float]:
    """Expected :func:`recall_at_k` of a random ranking: for a query whose label has ``m`` of
    the ``n`` items, the chance that K items drawn without replacement hold no hit is
    C(n - m, K) / C(n, K); Recall@K is one minus that, averaged over the queries."""
    from math import comb

    q, i = np.asarray(query_labels), np.asarray(item_labels)
    n = len(i)
    counts = {label: int((i == label).sum()) for label in np.unique(q)}
    return {k: float(np.mean([1 - comb(n - counts[label], k) / comb(n, k) for label in q]))
            for k in ks}


def _multilabel(scores_or_predictions, actual) -> tuple[np.ndarray, np.ndarray]:
    x, actual = np.asarray(scores_or_predictions), np.asarray(actual)
    if x.ndim != 2 or x.shape != actual.shape or actual.dtype != bool:
        raise ValueError(f"expected two (items, tags) arrays of the same shape, the second bool, got "
                         f"{x.dtype} {x.shape} and {actual.dtype} {actual.shape}")
    return x, actual


def precision_recall(predicted, actual) -> dict[str, np.ndarray | float]:
    """Multi-label precision and recall of bool (items, tags) predictions.

    Per tag: precision = right predictions of the tag / predictions of it, recall = right
    predictions / items that have it (NaN where the denominator is 0). ``micro_*`` pool every
    (item, tag) decision."""
    predicted, actual = _multilabel(predicted, actual)
    predicted = predicted.astype(bool)
    hits = (predicted & actual).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hits / predicted.sum(0)
        recall = hits / actual.sum(0)
    return {"precision": precision, "recall": recall,
            "micro_precision": float(hits.sum() / max(predicted.sum(), 1)),
            "micro_recall": float(hits.sum() / max(actual.sum(), 1))}


def average_precision(scores, actual) -> np.ndarray:
    """Per tag, the area under the tag's precision-recall curve as a step function: the sum over
    score thresholds, from the highest, of (gain in recall) x (precision at that threshold); NaN
    for absent tags. Items with tied scores pass a threshold together, so the order in which
    they are listed does not matter (scikit-learn's ``average_precision_score`` is the same)."""
    scores, actual = _multilabel(scores, actual)
    ap = np.full(scores.shape[1], np.nan)
    for t in range(scores.shape[1]):
        if not actual[:, t].any():
            continue
        order = np.argsort(-scores[:, t], kind="stable")
        ranked_scores, ranked = scores[order, t], actual[order, t]
        last_of_tie = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]
        hits = np.cumsum(ranked)[last_of_tie]
        precision = hits / (np.flatnonzero(last_of_tie) + 1)
        recall_gain = np.diff(np.r_[0, hits]) / hits[-1]
        ap[t] = float((recall_gain * precision).sum())
    return ap


def below(difference: float, limit: float) -> str:
    """A rounding-level difference, stated the same way on every machine: is it under ``limit``?

    Floating-point noise (``4.03e-15`` here, ``5.67e-15`` on another CPU or thread count) is not
    a result; the bound is. Prints ``below 1e-12``, or the value and ``NOT below`` when it fails.
    """
    if not limit > 0:
        raise ValueError(f"limit must be a positive bound, got {limit!r}")
    return f"below {limit:.0e}" if difference < limit else f"{difference:.1e}, NOT below {limit:.0e}"
