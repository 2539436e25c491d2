"""Run by tests/test_distributed.py, once alone and once under `torchrun --nproc_per_node=2`.

    python distributed_worker.py train|contrastive OUT.pt

Rank 0 (or the lone process) saves what it computed to OUT.pt for the test to compare. Every
process computes on the CPU (gloo), on a GPU machine too: the test checks the arithmetic.
"""
import os
import sys

os.environ.setdefault("MMLEARN_DEVICE", "cpu")  # before mmlearn chooses a device

import mmlearn  # noqa: F401  (first, as everywhere)
import torch
from torch import nn

from mmlearn import distributed, training
from mmlearn.models.crossmodal import LogitScale, contrastive_loss

CPU = torch.device("cpu")


def classification_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(96, 8, generator=g), torch.randint(0, 3, (96,), generator=g)


def train(out):
    x, y = classification_data()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rows_seen = []

    def loss_fn(m, batch):
        rows_seen.append(len(batch[0]))
        return nn.functional.cross_entropy(m(batch[0]), batch[1])

    history = training.fit(model, training.ArrayBatches(x, y, batch_size=16, seed=0), loss_fn,
                           epochs=3, optimizer=optimizer, device=CPU, verbose=False)
    if distributed.rank() == 0:
        torch.save({"state": model.state_dict(), "loss": history["loss"], "rows": sum(rows_seen)}, out)


class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.image, self.text, self.logit_scale = nn.Linear(6, 4), nn.Linear(5, 4), LogitScale()

    def forward(self, a, b):
        return self.image(a), self.text(b), self.logit_scale()


def contrastive(out):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(32, 6, generator=g), torch.randn(32, 5, generator=g)
    model = TwoTowers()
    wrapped = (nn.parallel.DistributedDataParallel(model) if distributed.is_distributed() else model)
    local = distributed.local_slice(torch.arange(32))
    image_emb, text_emb, scale = wrapped(a[local], b[local])
    loss = contrastive_loss(distributed.gather(image_emb), distributed.gather(text_emb), scale)
    loss.backward()
    if distributed.rank() == 0:
        torch.save({"loss": loss.detach(), "grads": {n: p.grad for n, p in model.named_parameters()}}, out)


if __name__ == "__main__":
    task, out = sys.argv[1], sys.argv[2]
    if "RANK" in os.environ:
        distributed.init()
    {"train": train, "contrastive": contrastive}[task](out)
    distributed.shutdown()
