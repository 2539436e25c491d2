"""The speed-ups that apply to the book's models, each measured off and on.

PyTorch (a hand loop over batches ready on the device, seconds per step = median of single
steps; off and on alternate, each after a warm-up step of its own):

* channels-last memory format for the conv nets (model and 4-D image batches);
* ``torch.compile``: the one-off compilation (the first steps, from an empty compiler cache)
  is reported apart from the steady-state step;
* mixed precision (autocast to bfloat16, or float16 with a gradient scaler where bfloat16 is
  missing) on a CUDA GPU; on a CPU, bfloat16 autocast as an extra row.

Both frameworks run deterministically in the book (``mmlearn.seed_everything``); a row each
shows what that costs. Keras (``train_on_batch`` on FormulaNet): op determinism off and on, XLA
(``jit_compile``) off and on, eager execution (``run_eagerly=True``) against the traced
``tf.function``, and mixed precision on a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time

import torch

import mmlearn as mm
from mmlearn.training import to_device

from common import median, sync


def _channels_last(batch):
    return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 and t.is_floating_point() else t
                 for t in batch)


def step_seconds(model, batches, loss_fn, optimizer, steps: int, warmup: int = 2, autocast=None,
                 scaler=None) -> tuple[float, list[float]]:
    """(median seconds of ``steps`` single steps after ``warmup`` ones, seconds of each warm-up step)."""
    device = next(model.parameters()).device
    model.train()

    def step(batch):
        with autocast() if autocast else contextlib.nullcontext():
            loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        step(batches[i % len(batches)])
        sync(device)
        times.append(time.perf_counter() - start)
    return median(times[warmup:]), times[:warmup]


def _setup(case, batch_size, device, n_batches=4):
    mm.seed_everything(0)
    model = case.build().to(device)
    batches = [to_device(b, device) for b in case.make(n_batches, batch_size or case.batch_size)]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, batches, optimizer


def interleaved(run_off, run_on, steps: int, rounds: int = 2) -> tuple[float, float]:
    """Median step seconds of two settings measured in alternation (off, on, on, off, ...), each
    run after one warm-up step of its own, so a slow spell of a shared machine hits both."""
    times = {run_off: [], run_on: []}
    per_round = max(1, -(-steps // rounds))
    for r in range(rounds):
        for run in ((run_off, run_on) if r % 2 == 0 else (run_on, run_off)):
            step, _ = run(per_round)
            times[run].append(step)
    return median(times[run_off]), median(times[run_on])


def torch_rows(case_makers, device: torch.device, steps: int, batch_size: int | None = None,
               compile_cases=(), quick: bool = False) -> list[list[str]]:
    rows = []
    for make in case_makers:
        case = make()
        b = batch_size or case.batch_size
        model, batches, opt = _setup(case, b, device)

        def run(n, model=model, batches=batches, **kw):
            return step_seconds(model, batches, case.loss_fn, opt, n, warmup=1, **kw)

        # channels-last: the same model switched between memory formats, with matching batches
        if case.image_input:
            last = [_channels_last(x) for x in batches]

            def contiguous(n):
                return run(n, model=model.to(memory_format=torch.contiguous_format))

            def channels_last(n):
                return run(n, model=model.to(memory_format=torch.channels_last), batches=last)

            off, on = interleaved(contiguous, channels_last, steps)
            model.to(memory_format=torch.contiguous_format)
            rows.append([case.name, "PyTorch", "channels-last", b, off, on, ""])

        # deterministic algorithms (the book's setting) off
        def deterministic(n, flag=True):
            torch.use_deterministic_algorithms(flag, warn_only=True)
            try:
                return run(n)
            finally:
                torch.use_deterministic_algorithms(True, warn_only=True)

        off, on = interleaved(deterministic, lambda n: deterministic(n, False), steps)
        rows.append([case.name, "PyTorch", "deterministic algorithms off", b, off, on,
                     "off = the book (seed_everything)"])

        # mixed precision: autocast on the GPU, bfloat16 autocast as an extra row on a CPU
        if device.type == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
            dtype = torch.bfloat16 if bf16 else torch.float16
            scaler = None if bf16 else torch.amp.GradScaler("cuda")
            off, on = interleaved(run, lambda n: run(n, autocast=lambda: torch.autocast("cuda", dtype=dtype),
                                                     scaler=scaler), steps)
            rows.append([case.name, "PyTorch", f"AMP ({str(dtype).split('.')[-1]})", b, off, on, ""])
        else:
            rows.append([case.name, "PyTorch", "AMP", b, None, None, "skipped: no GPU"])
            off, on = interleaved(run, lambda n: run(n, autocast=lambda: torch.autocast(device.type,
                                                                                         dtype=torch.bfloat16)),
                                  steps)
            rows.append([case.name, "PyTorch", f"bf16 autocast ({device.type})", b, off, on, ""])

        # torch.compile, from an empty compiler cache so that compiling is timed in full
        if case.name in compile_cases:
            if quick:
                rows.append([case.name, "PyTorch", "torch.compile", b, None, None, "skipped in --quick"])
                continue
            off, _ = run(steps)
            torch._dynamo.reset()
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPUs
            previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
            try:
                with tempfile.TemporaryDirectory() as cache:
                    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
                    on, first = step_seconds(torch.compile(model), batches, case.loss_fn, opt, steps, warmup=3)
            except Exception as err:  # no compiler on this machine, an unsupported op, ...
                rows.append([case.name, "PyTorch", "torch.compile", b, off, None,
                             f"failed: {type(err).__name__}: {str(err).splitlines()[0][:60]}"])
                continue
            finally:
                if previous is None:
                    os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
                else:
                    os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
            rows.append([case.name, "PyTorch", "torch.compile", b, off, on,
                         f"compiling: {sum(first) - len(first) * on:.0f} s once (first {len(first)} steps)"])
    return rows


def keras_rows(steps: int, batch_size: int | None = None, eager_steps: int = 3) -> list[list[str]]:
    """FormulaNet in Keras: op determinism, XLA, eager vs traced, mixed precision (GPU).

    The book's ``seed_everything`` enables TensorFlow's op determinism, and Keras then quietly
    compiles without XLA (``jit_compile`` falls back to False). So XLA is measured with
    determinism off, and determinism itself gets a row; the book's setting is restored after.
    """
    from tensorflow.python.framework import config as tf_config

    from mmlearn.models import deconv_keras as dk

    keras, tf = dk.keras, dk.tf
    b = batch_size or mm.run_size("deconv.formula", "standard").batch_size

    def seconds(n_steps, deterministic=True, **compile_args):
        mm.seed_everything(0)  # enables op determinism, as every chapter does
        if not deterministic:
            tf_config.disable_op_determinism()
        model = dk.build(dk.FORMULA)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], **compile_args)
        step = median(dk.train_step_seconds(model, b, n_steps))
        return step, bool(model.jit_compile)

    try:
        book, _ = seconds(steps, jit_compile="auto")
        free, _ = seconds(steps, deterministic=False, jit_compile=False)
        xla, applied = seconds(steps, deterministic=False, jit_compile=True)
        eager, _ = seconds(eager_steps, run_eagerly=True)
        rows = [["FormulaNet", "Keras", "op determinism off", b, book, free,
                 "off = the book (seed_everything); XLA off in both"],
                ["FormulaNet", "Keras", "XLA (jit_compile)", b, free, xla if applied else None,
                 "op determinism off in both" if applied else "Keras refused XLA for this model"],
                ["FormulaNet", "Keras", "tf.function vs run_eagerly", b, eager, book,
                 "off = run_eagerly=True; on = the book"]]
        if tf.config.list_physical_devices("GPU"):
            policy = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy("mixed_float16")
            try:
                mixed, _ = seconds(steps, jit_compile="auto")
            finally:
                keras.mixed_precision.set_global_policy(policy)
            rows.append(["FormulaNet", "Keras", "mixed_float16", b, book, mixed, "op determinism on in both"])
        else:
            rows.append(["FormulaNet", "Keras", "mixed_float16", b, None, None, "skipped: no GPU"])
    finally:
        mm.seed_everything(0)  # the book's settings again
    return rows


def format_rows(rows) -> list[list[str]]:
    out = []
    for name, framework, what, b, off, on, note in rows:
        speed = f"{off / on:.2f}x" if off and on else "-"
        out.append([name, framework, what, b, f"{off * 1000:.1f}" if off else "-",
                    f"{on * 1000:.1f}" if on else "-", speed, note])
    return out


HEADERS = ["model", "framework", "speed-up", "batch", "off ms/step", "on ms/step", "on vs off", "note"]
