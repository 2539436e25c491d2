"""Two CPU processes under torchrun (gloo) compute what one process computes on the global batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmlearn import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")


def run_worker(task, out, processes):
    env = {**os.environ, "MMLEARN_THREADS": "1", "OMP_NUM_THREADS": "1"}
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
