"""Data-parallel training across processes with ``torch.distributed``.

Under ``torchrun`` every process runs the same script. Three things change compared with one
process, and this module holds each of them once:

1. start-up: :func:`init` joins the process group that ``torchrun`` describes in environment
   variables (gloo on the CPU, NCCL on CUDA GPUs);
2. data: each process takes its own slice of every global batch (:func:`local_slice`, used by
   :class:`mmlearn.training.ArrayBatches`), and ``DistributedDataParallel`` averages the
   gradients, so a step equals one process's step on the whole global batch;
3. losses that compare examples with each other, such as the contrastive loss, need the other
   processes' examples as negatives: :func:`gather` concatenates a tensor from all processes
   and keeps the gradient flowing back to each process's own rows.

Outside ``torchrun`` every function here is a no-op, so the same code runs in a notebook.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init(backend: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` set up; return this process's device.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` from the
    environment. ``backend`` defaults to NCCL when CUDA is available, gloo otherwise.
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
               if v not in os.environ]
    if missing:
        raise RuntimeError(f"environment variables {', '.join(missing)} are not set: start the "
                           "script with `torchrun --nproc_per_node=N script.py`")
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_slice(indices: torch.Tensor) -> torch.Tensor:
    """This process's share of a global batch's indices (contiguous, sizes differ by at most 1)."""
    if not is_distributed():
        return indices
    return indices.tensor_split(world_size())[rank()]


def gather(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` from every process, concatenated in rank order, differentiable.

    The backward pass sums, over processes, the gradients that reach each process's rows, so
    with ``DistributedDataParallel``'s averaging the parameter gradient equals that of one
    process computing the loss over the concatenated batch. Every process must pass the same
    number of rows.
    """
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def mean_over_processes(value: float) -> float:
    """The average of a Python number across processes (e.g. the epoch loss for the log).

    A collective operation: every process must call it, not only rank 0.
    """
    if not is_distributed():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world_size()
