"""Two CPU processes under torchrun (gloo) compute what one process computes on the global batch;
the number of processes and each one's device follow the machine's GPUs (faked here)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmlearn import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")


def run_worker(task, out, processes):
    # The CPU (gloo) on every machine: these runs check the arithmetic, not the GPUs
    env = {**os.environ, "MMLEARN_THREADS": "1", "OMP_NUM_THREADS": "1", "MMLEARN_DEVICE": "cpu"}
    if processes == 1:
        cmd = [sys.executable, str(WORKER), task, str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", str(WORKER), task, str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    return {(task, n): run_worker(task, tmp / f"{task}{n}.pt", n)
            for task in ("train", "contrastive") for n in (1, 2)}


def test_two_processes_train_to_the_same_weights(runs):
    one, two = runs["train", 1], runs["train", 2]
    assert two["rows"] * 2 == one["rows"], "each process should see half of every batch"
    for name, weight in one["state"].items():
        torch.testing.assert_close(two["state"][name], weight, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(torch.tensor(two["loss"]), torch.tensor(one["loss"]), rtol=1e-5, atol=1e-6)


def test_distributed_contrastive_loss_and_gradients_equal_the_global_batch(runs):
    one, two = runs["contrastive", 1], runs["contrastive", 2]
    torch.testing.assert_close(two["loss"], one["loss"], rtol=1e-6, atol=1e-6)
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_helpers_are_no_ops_in_one_process():
    x = torch.arange(6)
    assert not distributed.is_distributed() and distributed.rank() == 0 and distributed.world_size() == 1
    assert torch.equal(distributed.local_slice(x), x) and torch.equal(distributed.gather(x), x)
    assert distributed.mean_over_processes(2.5) == 2.5


def test_init_outside_torchrun_says_how_to_start(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        distributed.init()


def fake_gpus(monkeypatch, n):
    """A machine with ``n`` CUDA GPUs, as far as mmlearn.distributed can tell."""
    monkeypatch.setattr(distributed, "get_device", lambda: torch.device("cuda" if n else "cpu"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.mark.parametrize("gpus, processes", [(0, 2), (1, 1), (2, 2), (8, 8)])
def test_one_process_per_gpu_and_two_on_the_cpu(monkeypatch, gpus, processes):
    fake_gpus(monkeypatch, gpus)
    assert distributed.process_count() == processes
    assert distributed.process_count(gpus) == processes


def test_a_gpu_the_book_does_not_use_is_not_counted(monkeypatch):
    monkeypatch.setattr(distributed, "get_device", lambda: torch.device("cpu"))  # MMLEARN_DEVICE=cpu
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert distributed.cuda_devices() == 0 and distributed.process_count() == distributed.CPU_PROCESSES


def test_process_count_rejects_a_negative_gpu_count():
    with pytest.raises(ValueError, match="at least 0"):
        distributed.process_count(-1)


@pytest.mark.parametrize("local_rank, processes, gpus, expected", [
    (0, 2, 0, "cpu"), (1, 2, 0, "cpu"),      # the CPU demo
    (0, 1, 1, "cuda:0"),                     # one GPU, one process
    (1, 2, 1, "cpu"), (0, 2, 1, "cpu"),      # two processes, one GPU: no cuda:1, so all on the CPU
    (1, 2, 2, "cuda:1"), (3, 4, 8, "cuda:3"),
])
def test_each_rank_gets_its_own_gpu_only_when_every_rank_has_one(local_rank, processes, gpus, expected):
    assert distributed.rank_device(local_rank, processes, gpus) == torch.device(expected)


def test_rank_device_rejects_a_rank_outside_the_machine():
    with pytest.raises(ValueError, match="LOCAL_RANK"):
        distributed.rank_device(2, 2, 2)


@pytest.mark.parametrize("gpus, local_rank, device, backend", [
    (0, 1, "cpu", "gloo"), (2, 1, "cuda:1", "nccl"), (1, 1, "cpu", "gloo"), (1, 0, "cpu", "gloo")])
def test_init_places_each_rank_by_the_gpus_there_are(monkeypatch, capsys, gpus, local_rank, device, backend):
    fake_gpus(monkeypatch, gpus)
    joined, placed = [], []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", joined.append)
    monkeypatch.setattr(torch.cuda, "set_device", placed.append)
    for var, value in {"RANK": local_rank, "WORLD_SIZE": 2, "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": 2,
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": 29500}.items():
        monkeypatch.setenv(var, str(value))
    assert distributed.init() == torch.device(device)
    assert joined == [backend]
    assert placed == ([torch.device(device)] if backend == "nccl" else [])
    warned = "every process runs on the CPU" in capsys.readouterr().err
    assert warned == (gpus == 1 and local_rank == 0), "local rank 0 says once why a GPU is left idle"


class FakeTensorFlow:
    """What mirrored_strategy asks of TensorFlow, for a machine with ``gpus`` GPUs."""

    def __init__(self, gpus):
        self.logical = None
        fake = self

        class config:
            @staticmethod
            def list_physical_devices(kind):
                return [f"/physical_device:{kind}:{i}" for i in range(gpus if kind == "GPU" else 1)]

            LogicalDeviceConfiguration = object

            @staticmethod
            def set_logical_device_configuration(device, configurations):
                fake.logical = len(configurations)

            @staticmethod
            def list_logical_devices(kind):
                return [type("Device", (), {"name": f"/device:CPU:{i}"}) for i in range(fake.logical or 1)]

        class distribute:
            @staticmethod
            def MirroredStrategy(devices=None):
                return ("mirrored", devices)

        self.config, self.distribute = config, distribute


def test_keras_mirrors_on_every_gpu_or_on_two_logical_cpus():
    gpu_tf = FakeTensorFlow(gpus=1)
    assert distributed.mirrored_strategy(gpu_tf) == ("mirrored", None) and gpu_tf.logical is None
    cpu_tf = FakeTensorFlow(gpus=0)
    assert distributed.mirrored_strategy(cpu_tf) == ("mirrored", ["/device:CPU:0", "/device:CPU:1"])
    assert cpu_tf.logical == distributed.CPU_PROCESSES
