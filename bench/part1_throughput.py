#!/usr/bin/env python3
"""Training throughput of Part I's two networks, in both frameworks, on this machine.

For PyTorch and for TensorFlow/Keras, time a few Adam training steps of the article's network
(``ArticleNet``: upsampling 32 -> 256, Flatten, an 84M-parameter Dense layer) and of the
network its formula describes (``FormulaNet``) at the same batch size, after one warm-up
step, and print images per second and the ratio. A benchmark, not a test: numbers depend on
the machine and on whatever else runs on it.

    .venv/bin/python bench/part1_throughput.py [--batch-size 8] [--steps 3]
"""

from __future__ import annotations

import argparse
import platform

import mmlearn as mm  # first: PyTorch before TensorFlow, thread counts

import numpy as np


def throughput(seconds: list[float], batch_size: int) -> float:
    return batch_size / float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network (after a warm-up)")
    args = parser.parse_args()
    mm.seed_everything(0)

    from mmlearn import deconv_torch as dt
    from mmlearn import deconv_keras as dk  # imports TensorFlow, after PyTorch

    print(f"machine: {platform.processor() or platform.machine()}, {mm.config.THREADS} threads, "
          f"device {mm.get_device()}; batch {args.batch_size}, median of {args.steps} steps")
    print(f"{'framework':<12}{'ArticleNet img/s':>18}{'FormulaNet img/s':>18}{'ratio':>9}")
    for framework, module in (("PyTorch", dt), ("Keras", dk)):
        rates = {}
        for name in ("article", "formula"):
            model = module.build(name)
            rates[name] = throughput(module.train_step_seconds(model, args.batch_size, args.steps),
                                     args.batch_size)
            del model
        print(f"{framework:<12}{rates['article']:>18.2f}{rates['formula']:>18.1f}"
              f"{rates['formula'] / rates['article']:>8.0f}x")


if __name__ == "__main__":
    main()
