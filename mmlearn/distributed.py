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

How many processes to start is :func:`process_count`'s choice: one per GPU on a CUDA machine,
:data:`CPU_PROCESSES` on a CPU. Each process then takes the device :func:`rank_device` gives it.
Keras' counterpart, :func:`mirrored_strategy`, mirrors a model on every GPU, or on as many
logical CPU devices as the PyTorch processes.

Outside ``torchrun`` every function here is a no-op, so the same code runs in a notebook.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from mmlearn.config import get_device

# Processes on a machine without CUDA: two gloo processes show every part of data parallelism
# (split batches, averaged gradients, gathered embeddings) on a 2-core CPU.
CPU_PROCESSES = 2


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def cuda_devices() -> int:
    """The CUDA GPUs the book may use here: none when its device is not CUDA (no GPU, Apple MPS, or
    ``MMLEARN_DEVICE=cpu``)."""
    return torch.cuda.device_count() if get_device().type == "cuda" else 0


def process_count(gpus: int | None = None) -> int:
    """Processes to start on this machine (``torchrun --nproc_per_node``): one per GPU, or
    :data:`CPU_PROCESSES` without one. ``gpus`` defaults to :func:`cuda_devices`.

    With a single GPU that is one process: ``torchrun`` still launches it, sets ``RANK`` and
    the other variables and forms a process group, but of one, with nothing to average.
    """
    gpus = cuda_devices() if gpus is None else gpus
    if gpus < 0:
        raise ValueError(f"gpus must be at least 0, got {gpus}")
    return gpus or CPU_PROCESSES


def rank_device(local_rank: int, local_processes: int, gpus: int | None = None) -> torch.device:
    """The device of the process with ``LOCAL_RANK`` ``local_rank`` among ``local_processes`` on
    its machine: ``cuda:local_rank`` when every one of them has a GPU of its own, else the CPU.

    The choice is the same in every process (a process group is all NCCL on GPUs or all gloo on
    CPUs), so more processes than GPUs run all of them on the CPU rather than some on a
    ``cuda:1`` that does not exist.
    """
    if not 0 <= local_rank < local_processes:
        raise ValueError(f"LOCAL_RANK must be in [0, {local_processes}), got {local_rank}")
    gpus = cuda_devices() if gpus is None else gpus
    return torch.device("cuda", local_rank) if local_processes <= gpus else torch.device("cpu")


def init(backend: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` set up; return this process's device.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and
    ``MASTER_ADDR``/``MASTER_PORT`` from the environment; the device is :func:`rank_device`'s.
    ``backend`` defaults to NCCL on CUDA, gloo otherwise.
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
               if v not in os.environ]
    if missing:
        raise RuntimeError(f"environment variables {', '.join(missing)} are not set: start the "
                           "script with `torchrun --nproc_per_node=N script.py`")
    local_rank = int(os.environ["LOCAL_RANK"])
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    gpus = cuda_devices()
    device = rank_device(local_rank, local_processes, gpus)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif gpus and local_rank == 0:
        print(f"{local_processes} processes on this machine but {gpus} GPU(s): every process runs on "
              f"the CPU (gloo). Start one process per GPU: torchrun --nproc_per_node={gpus}",
              file=sys.stderr)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return device


def mirrored_strategy(tf):
    """A Keras ``tf.distribute.MirroredStrategy`` over this machine's devices: every GPU
    TensorFlow sees, or, without one, the CPU split into :data:`CPU_PROCESSES` logical devices
    (one replica each, like the PyTorch processes). Call it before TensorFlow first uses a
    device: the CPU can only be split then."""
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()  # all visible GPUs, one replica each
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * CPU_PROCESSES)
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])


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
