#!/usr/bin/env python3
"""Part I: the article's network against the formula's, in PyTorch and in Keras, on this machine.

For each framework and network:

* seconds per Adam training step on random images at one batch size (median of ``steps``
  steps after a warm-up step), from ``deconv`` / ``deconv_keras.train_step_seconds``;
* time per epoch of the book's Part I training set (the ``standard`` profile's
  ``deconv.formula`` subset of ``load_cifar10``): measured by training FormulaNet for
  ``epochs`` epochs; extrapolated from the step time for ArticleNet, whose step takes seconds;
* test accuracy: FormulaNet's after those epochs, next to the figure the chapter stores;
  ArticleNet is trained for one epoch only where that epoch is cheap (a GPU), otherwise its row
  says why there is no figure.

A section of ``bench/run.py``; it also runs on its own:

    .venv/bin/python bench/part1_throughput.py [--batch-size 8] [--steps 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import time
from pathlib import Path

import mmlearn as mm  # first: PyTorch before TensorFlow, thread counts

from common import fmt_rate, fmt_seconds, heading, machine_lines, median, table

ROOT = Path(__file__).resolve().parent.parent
STORED = {"PyTorch": "chapters/part1/05_pytorch.ipynb", "Keras": "chapters/part1/04_keras.ipynb"}
ARTICLE_RUN = (50, 50_000)  # the article's own training: 50 epochs of CIFAR-10's 50,000 images


def _module(framework: str):
    if framework == "PyTorch":
        from mmlearn.models import deconv as module
    else:
        from mmlearn.models import deconv_keras as module  # imports TensorFlow, after PyTorch
    return module


def _config(name: str):
    """The chapters' configuration of ``name`` ("article" or "formula")."""
    from mmlearn.models import deconv as dt

    return {"article": dt.ARTICLE, "formula": dt.FORMULA}[name]


@functools.lru_cache(maxsize=None)
def step_seconds(framework: str, name: str, batch_size: int, steps: int) -> float:
    """Median seconds per training step (cached: the models table reuses ArticleNet's figure)."""
    module = _module(framework)
    mm.seed_everything(0)
    model = module.build(_config(name))
    return median(module.train_step_seconds(model, batch_size, steps))


def stored_accuracy(framework: str) -> float | None:
    """The test accuracy the chapter's stored output prints (standard profile), or None."""
    try:
        cells = json.loads((ROOT / STORED[framework]).read_text())["cells"]
    except (OSError, ValueError):
        return None
    for cell in cells:
        for output in cell.get("outputs", []):
            found = re.search(r"test accuracy: ([\d.]+)% on", "".join(output.get("text", [])))
            if found:
                return float(found.group(1)) / 100
    return None


def book_data(n_train: int | None = None):
    """The chapter's data: ``load_cifar10`` subset to the standard profile's sizes."""
    size = mm.run_size("deconv.formula", "standard")
    data = mm.data.load_cifar10(verbose=False)
    return data.subset(n_train or size.n_train, size.n_test)


def train_torch(name: str, d, epochs: int, batch_size: int) -> tuple[float, float]:
    """(median seconds per epoch, test accuracy) of ``name`` trained with ``mmlearn.training.fit``."""
    import torch
    import torch.nn.functional as F
    from mmlearn.models import deconv as dt

    mm.seed_everything(0)
    model = dt.build(_config(name))
    x_train, x_test = dt.prepare_images(d.x_train), dt.prepare_images(d.x_test)
    batches = mm.training.ArrayBatches(x_train, torch.from_numpy(d.y_train), batch_size=batch_size, seed=0)
    history = mm.training.fit(model, batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]),
                              epochs=epochs, verbose=False)
    accuracy = mm.metrics.accuracy(mm.training.predict(model, x_test), d.y_test)
    return median(history["seconds"][1:] or history["seconds"]), accuracy


def train_keras(name: str, d, epochs: int, batch_size: int) -> tuple[float, float]:
    """(median seconds per epoch, tracing excluded where there are 2+ epochs; test accuracy)."""
    from mmlearn.models import deconv_keras as dk

    class EpochClock(dk.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    mm.seed_everything(0)
    model = dk.compile_classifier(dk.build(_config(name)))
    clock = EpochClock()
    model.fit(dk.prepare_images(d.x_train), d.y_train, batch_size=batch_size, epochs=epochs, verbose=0,
              callbacks=[clock])
    accuracy = mm.metrics.accuracy(model.predict(dk.prepare_images(d.x_test), verbose=0), d.y_test)
    return median(clock.seconds[1:] or clock.seconds), accuracy


def measure(batch_size: int, steps: int, epochs: int, n_train: int | None = None,
            article_budget_s: float = 300.0, frameworks=("PyTorch", "Keras")) -> list[dict]:
    """One row per (framework, network); see the module's docstring."""
    d = book_data(n_train)
    formula_batch = mm.run_size("deconv.formula", "standard").batch_size
    rows = []
    for framework in frameworks:
        train = train_torch if framework == "PyTorch" else train_keras
        for name in ("article", "formula"):
            step = step_seconds(framework, name, batch_size, steps)
            row = {"framework": framework, "network": "ArticleNet" if name == "article" else "FormulaNet",
                   "batch": batch_size, "step_s": step, "n_train": len(d.y_train), "data": d.source}
            if name == "formula":
                row["epoch_s"], row["accuracy"] = train(name, d, epochs, formula_batch)
                row["how"] = f"measured, batch {formula_batch}"
                stored = stored_accuracy(framework)
                standard = mm.run_size("deconv.formula", "standard").epochs
                row["acc_source"] = f"here, {epochs} epoch{'s' * (epochs > 1)}" + (
                    f" (chapter: {stored:.1%} after {standard})" if stored else "")
                if epochs == 1:
                    row["how"] += ", incl. set-up" if framework == "PyTorch" else ", incl. tracing"
            else:
                row["epoch_s"] = math.ceil(len(d.y_train) / batch_size) * step
                row["how"] = f"extrapolated from {steps} step{'s' * (steps > 1)}"
                if row["epoch_s"] <= article_budget_s:
                    _, row["accuracy"] = train(name, d, 1, batch_size)
                    row["acc_source"] = "here, 1 epoch"
                else:
                    row["accuracy"], row["acc_source"] = None, f"not trained: epoch > {article_budget_s:.0f} s *"
            rows.append(row)
    return rows


def report(rows: list[dict]) -> None:
    n = rows[0]["n_train"]
    print(f"epoch = the book's Part I training set: {n:,} images ({rows[0]['data']})")
    print(table(["framework", "network", "batch", "s/step", "img/s", f"epoch of {n:,}", "epoch time is",
                 "test accuracy", "accuracy source"],
                [[r["framework"], r["network"], r["batch"], f"{r['step_s']:.3f}",
                  fmt_rate(r["batch"] / r["step_s"]), fmt_seconds(r["epoch_s"]), r["how"],
                  f"{r['accuracy']:.1%}" if r["accuracy"] is not None else "-", r["acc_source"]]
                 for r in rows], left=2))
    epochs, images = ARTICLE_RUN
    for framework in dict.fromkeys(r["framework"] for r in rows):
        article, formula = (next(r for r in rows if r["framework"] == framework and r["network"] == net)
                            for net in ("ArticleNet", "FormulaNet"))
        print(f"{framework}: ArticleNet is {article['step_s'] / formula['step_s']:,.0f}x slower per step at "
              f"batch {article['batch']}; the article's run ({epochs} epochs of {images:,} images) would take "
              f"{fmt_seconds(epochs * images / article['batch'] * article['step_s'])} here vs "
              f"{fmt_seconds(epochs * images / n * formula['epoch_s'])} for FormulaNet")
    if any(r["accuracy"] is None for r in rows):
        train_size = mm.run_size("deconv.article_train", "standard")
        print(f"* the book trains ArticleNet only in the 'full' profile (SIZES deconv.article_train: "
              f"standard epochs={train_size.epochs}), so no chapter stores an accuracy for it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=mm.run_size("deconv.article_timing", "standard").batch_size)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network (after a warm-up)")
    parser.add_argument("--epochs", type=int, default=2, help="FormulaNet training epochs for the accuracy")
    args = parser.parse_args()
    print("\n".join(machine_lines(mm.get_device())))
    heading("Part I: the article's network vs the formula's")
    report(measure(args.batch_size, args.steps, args.epochs))


if __name__ == "__main__":
    main()
