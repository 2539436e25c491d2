"""Throughput of Part II's image-text model on this machine (a benchmark, not a test).

Prints, for one batch size:
* training throughput of the contrastive two-tower model, in pairs/s, with the text tower
  frozen and its caption features cached (as chapter 4 trains it) and with the frozen text
  transformer run at every step;
* encoding throughput of each tower in eval mode: pictures/s and captions/s.

Usage: python bench/part2_throughput.py [--batch-size 32] [--steps 5] [--image-size 64]
"""

from __future__ import annotations

import argparse
import time

import mmlearn as mm  # first: sets thread counts and import order
import torch

from mmlearn import crossmodal as cm, shapes


def rate(n_items: int, fn, steps: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return n_items * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    info = mm.setup(seed=0)
    b = args.batch_size
    train, _ = shapes.load_shape_pairs()
    pictures = train.images[:b] if args.image_size == 64 else shapes.downsample(train.images[:b], 64 // args.image_size)
    x = cm.image_tensor(pictures, args.image_size).to(info.device)
    captions = train.captions[:b]
    model = cm.build_dual_encoder(cm.DualEncoderConfig(image_size=args.image_size, stem="imagenet")).to(info.device)
    tokens = {k: v.to(info.device) for k, v in model.text.tokenize(captions).items()}
    cached = model.text.pooled_features(captions).to(info.device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def train_step(text_emb_fn):
        def step():
            loss = cm.contrastive_loss(model.image(x), text_emb_fn(), model.logit_scale())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    model.train()
    cached_rate = rate(b, train_step(lambda: model.text.head(cached)), args.steps)
    full_rate = rate(b, train_step(lambda: model.text(**tokens)), args.steps)
    model.eval()
    with torch.no_grad():
        image_rate = rate(b, lambda: model.image(x), args.steps)
        text_rate = rate(b, lambda: model.text(**model.text.tokenize(captions)), args.steps)
    print(f"device {info.device.type}, {info.threads} threads, batch size {b}, "
          f"{args.image_size} px pictures, ResNet18 + {model.text.model_name} (frozen)")
    print(f"train, cached caption features : {cached_rate:8.1f} pairs/s")
    print(f"train, text transformer run    : {full_rate:8.1f} pairs/s")
    print(f"encode pictures (image tower)  : {image_rate:8.1f} pictures/s")
    print(f"encode captions (text tower)   : {text_rate:8.1f} captions/s (tokenizing included)")


if __name__ == "__main__":
    main()
