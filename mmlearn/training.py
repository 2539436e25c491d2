"""The PyTorch training loop every chapter uses, and in-memory batching.

The loop is deliberately small: the chapter decides what a batch is and what the loss is
(``loss_fn(model, batch) -> scalar tensor``), so classification, fusion and contrastive
models all train through the same :func:`fit`. Keras models use Keras' own ``fit``; both
return per-epoch histories as ``dict[str, list[float]]`` so the same plots draw them.

The same calls run unchanged under ``torchrun``: :class:`ArrayBatches` then hands each process
its slice of every global batch and :func:`fit` wraps the model in DistributedDataParallel
(see :mod:`mmlearn.distributed`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from mmlearn import distributed
from mmlearn.config import get_device


class ArrayBatches:
    """Mini-batches of in-memory arrays as tensors, reshuffled each epoch with a fixed seed.

    Gathering each batch from whole tensors with one ``index_select`` is many times faster than
    ``DataLoader`` over a ``TensorDataset``, which indexes one sample at a time (and two to four
    times faster than ``t[idx]``, which goes through advanced indexing). Arrays must share their
    first dimension. Under ``torchrun`` every process draws the same order and yields only its
    own slice of each batch, so ``batch_size`` is the global batch size (``shard=False`` yields
    whole batches to every process, as evaluation wants).
    """

    def __init__(self, *arrays, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, shard: bool = True):
        if not arrays:
            raise ValueError("ArrayBatches needs at least one array")
        self.tensors = [torch.as_tensor(np.asarray(a)) if not torch.is_tensor(a) else a for a in arrays]
        n = len(self.tensors[0])
        if any(len(t) != n for t in self.tensors):
            raise ValueError("all arrays must have the same number of rows, got "
                             f"{[len(t) for t in self.tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.shard = shard
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            if self.shard:
                idx = distributed.local_slice(idx)
            yield tuple(t.index_select(0, idx) for t in self.tensors)


def progress(iterable, description: str):
    """``iterable`` behind a progress bar that disappears when the loop ends (``tqdm.auto``: a
    widget in Jupyter and Colab, a text line in a terminal).

    ``MMLEARN_PROGRESS=0`` turns the bars off. The book's own runs set it (``tasks.py`` and the
    test suite), so a stored page keeps only its epoch lines and nbval compares no timings."""
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=description, leave=False,  # tqdm reads the total from len()
                disable=os.environ.get("MMLEARN_PROGRESS", "1") == "0")


def to_device(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _mean_loss(losses: list[torch.Tensor], sizes: list[int]) -> float:
    """The epoch's loss: the batches' mean losses weighted by their sizes, read in one transfer."""
    if not losses:
        return 0.0
    dtype = torch.float32 if losses[0].device.type == "mps" else torch.float64  # MPS has no float64
    weights = torch.tensor(sizes, dtype=dtype)
    return float(torch.stack(losses).to("cpu", dtype) @ weights / weights.sum())


def one_cycle_adamw(model: torch.nn.Module, lr: float, total_steps: int, *,
                    weight_decay: float = 1e-4, warmup: float = 0.15) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters whose learning rate follows a one-cycle
    schedule over ``total_steps`` optimiser steps: warmed up to ``lr`` for the first ``warmup``
    share of them, then annealed. The schedule advances with every ``optimizer.step()``, so
    :func:`fit` needs nothing more than this optimizer."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, pct_start=warmup,
                                                   total_steps=total_steps)
    optimizer.register_step_post_hook(lambda *_: schedule.step())
    return optimizer


def fit(model: torch.nn.Module, batches: Iterable, loss_fn: Callable, *, epochs: int,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
        evaluate: Callable[[torch.nn.Module], dict] | None = None, keep_best: str | None = None,
        device: torch.device | None = None, verbose: bool = True) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` passes over ``batches``; return the per-epoch history.

    ``loss_fn(model, batch)`` returns the mean loss of one batch (already on ``device``).
    ``evaluate(model)``, if given, runs after each epoch in eval mode and returns metrics
    such as ``{"val_accuracy": 0.97}`` on a validation split; they join the history.
    ``keep_best="val_loss"`` names one of them, lower being better: training still runs all
    ``epochs``, then the model gets back the weights of the epoch where it was lowest (the
    first such epoch), and ``history["best_epoch"]`` says which one that was.

    Under ``torchrun`` the model is wrapped in DistributedDataParallel and ``loss_fn`` receives
    the wrapper, so it must call the model (``model(...)``) rather than its submodules; the
    logged loss is the mean over processes and only rank 0 prints.

    The batches' losses stay on the device and are averaged once per epoch: reading each one
    (``loss.item()``) would make the CPU wait for the GPU before it could queue the next step.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if keep_best is not None and evaluate is None:
        raise ValueError(f"keep_best={keep_best!r} needs evaluate=..., a function returning {{{keep_best!r}: value}} "
                         "after each epoch")
    device = get_device() if device is None else device
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    trained = model
    if distributed.is_distributed() and not isinstance(model, DistributedDataParallel):
        trained = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    verbose = verbose and distributed.rank() == 0
    history: dict[str, list[float]] = {"loss": [], "seconds": []}
    best_state = None
    for epoch in range(1, epochs + 1):
        model.train()
        start, losses, sizes = time.perf_counter(), [], []
        for batch in progress(batches, f"epoch {epoch}/{epochs}") if verbose else batches:
            batch = to_device(batch, device)
            loss = loss_fn(trained, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach().reshape(()))
            sizes.append(len(batch[0]))
        history["loss"].append(distributed.mean_over_processes(_mean_loss(losses, sizes)))
        history["seconds"].append(time.perf_counter() - start)
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                for key, value in evaluate(model).items():
                    history.setdefault(key, []).append(float(value))
            if keep_best is not None:
                if keep_best not in history:
                    raise ValueError(f"keep_best={keep_best!r} is not among what evaluate returned: "
                                     f"{', '.join(k for k in history if k not in ('loss', 'seconds'))}")
                if history[keep_best][-1] < min(history[keep_best][:-1], default=float("inf")):
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    history["best_epoch"] = [epoch]
        if verbose:
            extra = "".join(f"  {k} {v[-1]:.4f}" for k, v in history.items()
                            if k not in ("loss", "seconds", "best_epoch"))
            print(f"epoch {epoch:>3}/{epochs}  loss {history['loss'][-1]:.4f}{extra}  "
                  f"({history['seconds'][-1]:.1f} s)")
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, batches: Iterable, loss_fn: Callable, *, seed: int = 0,
                  device: torch.device | None = None) -> float:
    """The mean of ``loss_fn`` over ``batches`` (weighted by batch size) in eval mode: a
    validation loss. A loss that samples (a VAE's) draws the same noise on every call, from
    ``seed``, and the global random state is left as it was, so epochs compare on equal terms
    and training draws the same numbers with or without this check."""
    device = get_device() if device is None else device
    model.to(device).eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        losses, sizes = [], []
        for batch in batches:
            batch = to_device(batch, device)
            losses.append(loss_fn(model, batch).detach().reshape(()))
            sizes.append(len(batch[0]))
    return _mean_loss(losses, sizes)


@torch.no_grad()
def predict(model: torch.nn.Module, *inputs, batch_size: int = 256, device: torch.device | None = None,
            forward=None) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``model(*inputs)`` over in-memory inputs in batches, in eval mode; outputs on the CPU.

    ``forward``, a method of ``model`` such as ``model.encoder`` or ``model.pooled``, is called
    instead of the model itself. A model that returns a tuple of tensors (two heads, say) gets a
    tuple back. Outputs stay on the device until the last batch, so the GPU is not waited on
    batch by batch.
    """
    device = get_device() if device is None else device
    model.to(device).eval()
    forward = model if forward is None else forward
    outputs = [forward(*to_device(batch, device))
               for batch in ArrayBatches(*inputs, batch_size=batch_size, shuffle=False, shard=False)]
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts).cpu() for parts in zip(*outputs))
    return torch.cat(outputs).cpu()
