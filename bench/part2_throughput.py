"""Throughput of Part II's image-text model on this machine (a benchmark, not a test).

For one batch size:
* training throughput of the contrastive two-tower model, in pairs/s, with the text tower
  frozen and its caption features cached (as chapter 4 trains it) and with the frozen text
  transformer run at every step;
* encoding throughput of each tower in eval mode: pictures/s and captions/s.

A section of ``bench/run.py``; it also runs on its own:

    .venv/bin/python bench/part2_throughput.py [--batch-size 32] [--steps 5] [--image-size 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import mmlearn as mm  # first: sets thread counts and import order
import torch

from mmlearn import blocks
from mmlearn.data import shapes
from mmlearn.models import crossmodal as cm

from common import sync


def rate(n_items: int, fn, steps: int, device: torch.device | None = None) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return n_items * steps / (time.perf_counter() - start)


def measure(batch_size: int, steps: int, image_size: int = cm.IMAGE_TEXT.image_size) -> dict:
    """Rates (items/s) of training and encoding, on the real easy-VQA pictures and captions, of
    chapter 4's model (``crossmodal.IMAGE_TEXT``), on ``image_size`` px pictures."""
    device = mm.get_device()
    b = batch_size
    mm.seed_everything(0)
    train, _ = shapes.load_shape_pairs()
    pictures = train.images[:b] if image_size == 64 else shapes.downsample(train.images[:b], 64 // image_size)
    x = cm.image_tensor(pictures, image_size).to(device)
    captions = train.captions[:b]
    model = cm.build(dataclasses.replace(cm.IMAGE_TEXT, image_size=image_size), verbose=False).to(device)
    tokens = {k: v.to(device) for k, v in model.text.tokenize(captions).items()}
    cached = model.text.pooled_features(captions).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def train_step(text_emb_fn):
        def step():
            loss = blocks.contrastive_loss(model.image(x), text_emb_fn(), model.logit_scale())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    model.train()
    rates = {"train, cached caption features": rate(b, train_step(lambda: model.text.head(cached)), steps, device),
             "train, text transformer run": rate(b, train_step(lambda: model.text(**tokens)), steps, device)}
    model.eval()
    with torch.no_grad():
        rates["encode pictures (image tower)"] = rate(b, lambda: model.image(x), steps, device)
        rates["encode captions (text tower, tokenizing included)"] = rate(
            b, lambda: model.text(**{k: v.to(device) for k, v in model.text.tokenize(captions).items()}),
            steps, device)
    return {"rates": rates, "batch": b, "image_size": image_size, "device": device.type,
            "text_model": model.text.model_name}


def report(result: dict) -> None:
    print(f"batch {result['batch']}, {result['image_size']} px pictures, ResNet18 + "
          f"{result['text_model']} (frozen), real easy-VQA pictures and captions")
    for name, value in result["rates"].items():
        unit = "pictures/s" if "pictures" in name else "captions/s" if "captions (" in name else "pairs/s"
        print(f"  {name:<52} {value:8.1f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=cm.IMAGE_TEXT.image_size)
    args = parser.parse_args()
    info = mm.setup(seed=0)
    print(f"device {info.device.type}, {info.threads} threads")
    report(measure(args.batch_size, args.steps, args.image_size))


if __name__ == "__main__":
    main()
