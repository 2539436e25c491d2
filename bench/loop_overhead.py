"""Training throughput of every book model, ``mmlearn``'s loop against a minimal hand loop.

For each case of :mod:`cases` (PyTorch) the same model, optimizer and batches are trained by

* ``mmlearn.training.fit`` for one epoch of ``steps`` batches drawn from the chapter's own
  batching (``ArrayBatches``, or ``vqa.ImageBatches``), and
* a minimal hand-written loop (forward, loss, ``zero_grad``, ``backward``, ``step``) over the
  same number of batches, already materialised on the device: no shuffling, no copying, no
  logging; the fastest a loop over these batches can be.

The two alternate (hand, fit, fit, hand, ...) ``repeats`` times after a warm-up; ``loop/hand``
is the median over the repeats of ``fit``'s throughput over the hand loop's next to it (target:
at least 0.9), so that a slow spell of a shared machine hits both sides of a pair alike.
Inside the ``fit`` runs, the time spent getting the next batch and moving it to the device is
clocked separately: its share of the epoch is the data wait (target: under 10%).

Keras has no ``mmlearn`` loop; its row compares ``model.fit`` with a minimal ``tf.function``
GradientTape loop the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch

import mmlearn as mm
from mmlearn.training import ArrayBatches, fit, predict, to_device

from common import fmt_rate, median, seconds, target

LOOP_TARGET, WAIT_TARGET = 0.9, 0.10


class TimedBatches:
    """Batches that clock how long fetching each one and moving it to ``device`` takes."""

    def __init__(self, batches: Iterable, device: torch.device):
        self.batches, self.device, self.seconds = batches, device, 0.0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        it = iter(self.batches)
        while True:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            batch = to_device(batch, self.device)
            self.seconds += time.perf_counter() - start
            yield batch


def hand_loop(model, batches, loss_fn, optimizer) -> None:
    model.train()
    for batch in batches:
        loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def measure_case(case, device: torch.device, run_seconds: float, repeats: int,
                 batch_size: int | None = None, min_steps: int = 3, max_steps: int = 50) -> dict:
    """Per-step seconds of ``fit`` and of the hand loop, and the data-wait share, for one case.

    An epoch holds as many steps as fit in ``run_seconds`` (within ``min_steps``..``max_steps``),
    judged from the warm-up steps.
    """
    b = batch_size or case.batch_size
    mm.seed_everything(0)
    model = case.build().to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    warm = [to_device(batch, device) for batch in case.make(2, b)]
    hand_loop(model, warm, case.loss_fn, optimizer)           # warm-up: allocations, kernel choice
    per_step = seconds(lambda: hand_loop(model, warm, case.loss_fn, optimizer), device) / len(warm)
    steps = int(min(max_steps, max(min_steps, round(run_seconds / per_step))))
    batches = case.make(steps, b)
    fixed = [to_device(batch, device) for batch in batches]   # one epoch, ready on the device
    items = sum(len(batch[-1]) for batch in fixed) / len(fixed)
    hand, fitted, waits = [], [], []

    def run_fit():
        timed = TimedBatches(batches, device)
        t = seconds(lambda: fit(model, timed, case.loss_fn, epochs=1, optimizer=optimizer,
                                device=device, verbose=False), device)
        fitted.append(t / len(fixed))
        waits.append(timed.seconds / t)

    def run_hand():
        hand.append(seconds(lambda: hand_loop(model, fixed, case.loss_fn, optimizer), device) / len(fixed))

    for r in range(repeats):
        for run in ((run_hand, run_fit) if r % 2 == 0 else (run_fit, run_hand)):
            run()
    return {"name": case.name, "chapter": case.chapter, "framework": "PyTorch", "batch": b,
            "unit": case.unit, "items": items, "fit_s": median(fitted), "hand_s": median(hand),
            "wait": median(waits), "steps": len(fixed), "repeats": repeats,
            "ratios": [h / f for h, f in zip(hand, fitted)]}


def measure_keras_formula(steps: int, repeats: int, batch_size: int | None = None) -> dict:
    """Keras ``model.fit`` against a minimal ``tf.function`` loop, FormulaNet, same arrays."""
    from mmlearn.models import deconv_keras as dk

    tf = dk.tf
    b = batch_size or mm.run_size("deconv.formula", "standard").batch_size
    rng = np.random.default_rng(0)
    x = rng.random((steps * b, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, steps * b)
    mm.seed_everything(0)
    model = dk.compile_classifier(dk.build(dk.FORMULA))
    loss_obj = model.loss
    variables = model.trainable_variables

    @tf.function(jit_compile=bool(model.jit_compile))
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_obj(yb, model(xb, training=True))
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    fixed = [(tf.constant(x[i * b:(i + 1) * b]), tf.constant(y[i * b:(i + 1) * b])) for i in range(steps)]
    step(*fixed[0])
    model.fit(x[:b], y[:b], batch_size=b, epochs=1, verbose=0)   # warm-up: both traced

    def hand_epoch():
        for xb, yb in fixed:
            loss = step(xb, yb)
        float(loss)  # waits for the last step

    hand, fitted = [], []
    for r in range(repeats):
        pair = ((hand, hand_epoch), (fitted, lambda: model.fit(x, y, batch_size=b, epochs=1, verbose=0)))
        for out, fn in (pair if r % 2 == 0 else pair[::-1]):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) / steps)
    return {"name": "FormulaNet", "chapter": "I.4", "framework": "Keras", "batch": b, "unit": "images",
            "items": b, "fit_s": median(fitted), "hand_s": median(hand), "wait": None, "steps": steps,
            "repeats": repeats, "xla": bool(model.jit_compile), "ratios": [h / f for h, f in zip(hand, fitted)]}


def rows(results: list[dict]) -> list[list[str]]:
    out = []
    for r in results:
        ratio = median(r["ratios"]) if r.get("ratios") else None
        out.append([r["name"], r["chapter"], r["framework"], r["batch"], r["unit"],
                    fmt_rate(r["items"] / r["fit_s"]) if r.get("fit_s") else "-",
                    fmt_rate(r["items"] / r["hand_s"]),
                    f"{ratio:.2f} ({min(r['ratios']):.2f}-{max(r['ratios']):.2f}) "
                    + (target(ratio, LOOP_TARGET, True) if r["framework"] == "PyTorch" else "n/a")
                    if ratio else "-",
                    f"{r['wait']:.1%} {target(r['wait'], WAIT_TARGET, False)}" if r.get("wait") is not None else "-"])
    return out


HEADERS = ["model", "ch.", "framework", "batch", "unit", "loop items/s", "hand items/s",
           f"loop/hand (range) >= {LOOP_TARGET}", f"data wait < {WAIT_TARGET:.0%}"]



# --- evaluation, and the loop's own cost per step ---------------------------------------------

def measure_predict(case, device: torch.device, repeats: int, n_batches: int = 8, batch_size: int = 256) -> dict:
    """``training.predict`` against a direct ``no_grad`` loop over slices of tensors already on
    the device, for a case whose batches are ``(*inputs, labels)`` and whose model returns logits."""
    mm.seed_everything(0)
    model = case.build().to(device).eval()
    *inputs, _ = next(iter(case.make(1, n_batches * batch_size)))  # one batch holding all inputs
    on_device = [t.to(device) for t in inputs]

    @torch.no_grad()
    def hand():
        for i in range(0, len(inputs[0]), batch_size):
            model(*(t[i:i + batch_size] for t in on_device))

    def library():
        predict(model, *inputs, batch_size=batch_size, device=device)

    hand(), library()  # warm-up
    times = {"hand": [], "predict": []}
    for r in range(repeats):
        for name, fn in (("hand", hand), ("predict", library))[:: 1 if r % 2 == 0 else -1]:
            times[name].append(seconds(fn, device))
    n = len(inputs[0])
    return {"name": case.name, "batch": batch_size, "n": n, "predict": n / median(times["predict"]),
            "hand": n / median(times["hand"])}


def loop_cost(device: torch.device, repeats: int, steps: int = 300) -> dict:
    """What ``fit`` adds per step, measured where the model costs next to nothing: a linear layer
    on (64, 48, 13) batches. Also the time ``ArrayBatches`` takes per batch of 64 pictures."""
    torch.manual_seed(0)
    x, y = torch.randn(steps * 64, 48, 13), torch.randint(0, 10, (steps * 64,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 13, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def loss_fn(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

    batches = ArrayBatches(x, y, batch_size=64)
    fixed = [to_device(b, device) for b in batches]
    pictures = ArrayBatches(torch.rand(steps * 64, 3, 32, 32), y, batch_size=64)
    times = {"hand": [], "fit": [], "batches": []}
    runs = {"hand": lambda: hand_loop(model, fixed, loss_fn, optimizer),
            "fit": lambda: fit(model, batches, loss_fn, epochs=1, optimizer=optimizer, device=device,
                               verbose=False),
            "batches": lambda: all(True for _ in pictures)}
    for r in range(repeats + 1):
        for name, fn in list(runs.items())[:: 1 if r % 2 == 0 else -1]:
            t = seconds(fn, device) / steps
            if r:  # the first round warms up
                times[name].append(t)
    hand_s, fit_s = median(times["hand"]), median(times["fit"])
    return {"hand_us": hand_s * 1e6, "fit_us": fit_s * 1e6, "batch_us": median(times["batches"]) * 1e6}
