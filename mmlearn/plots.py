"""Figures the chapters share: image grids, feature sequences, learning curves, confusions.

Every function draws into a new or given Matplotlib axes, titles it and labels its axes with
units, and returns the figure so a notebook can save or tweak it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, labels=None, class_names=None, ncols: int = 10, title: str = "",
               size: float = 1.2):
    """A grid of uint8 images, (N, H, W) grey or (N, H, W, 3) colour, captioned by label."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r" if images.ndim == 3 else None)
        if labels is not None:
            label = labels[i]
            ax.set_title(class_names[label] if class_names is not None else str(label), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_sequence(sequence, ax=None, title: str = "", frame_ms: float | None = None):
    """A (T, F) feature sequence such as MFCCs, time on the x axis.

    With ``frame_ms`` (the hop between frames) the x axis is in milliseconds, else in frames.
    """
    sequence = np.asarray(sequence)
    if sequence.ndim != 2:
        raise ValueError(f"sequence must be (frames, features), got shape {sequence.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.5))
    t_end = len(sequence) * (frame_ms or 1)
    im = ax.imshow(sequence.T, aspect="auto", origin="lower", cmap="magma",
                   extent=(0, t_end, -0.5, sequence.shape[1] - 0.5))
    ax.set_xlabel("time (ms)" if frame_ms else "frame")
    ax.set_ylabel("coefficient index")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="value (a.u.)")
    return ax.figure


def bar_comparison(names, values, ax=None, title: str = "", ylabel: str = "", errors=None,
                   fmt: str = "{:.1%}"):
    """Bars with their value written on top; ``errors`` draws error bars (e.g. std over seeds)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.2))
    bars = ax.bar(names, values, yerr=errors, capsize=4, color="#4c72b0")
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, max(values) * 1.15)
    return ax.figure


def learning_curves(histories: dict, metrics=("loss",), title: str = "Learning curves",
                    ylabels: dict | None = None):
    """One panel per metric; ``histories`` maps a run's name to its per-epoch history
    (``dict[str, list[float]]``, as returned by ``mmlearn.training.fit`` or Keras'
    ``History.history``)."""
    ylabels = ylabels or {}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            if metric in history:
                values = history[metric]
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabels.get(metric, metric))
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion(matrix, class_names, ax=None, title: str = "Confusion matrix"):
    """A confusion matrix (rows true, columns predicted) with counts in the cells."""
    matrix = np.asarray(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(class_names) + 2, 0.45 * len(class_names) + 1.5))
    im = ax.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")
    ax.figure.colorbar(im, ax=ax, label="test examples")
    return ax.figure
