#!/usr/bin/env python3
"""The book's benchmarks in one command: figures for the machine it runs on, targets alongside.

    .venv/bin/python bench/run.py [--quick] [--batch-size N] [--device cpu|cuda|mps]
                                  [--sections models,part1,speedups,part2,book] [--models NAME,...]

Sections (all but ``loaders`` by default):

models    training throughput of every book model in each framework that has it; mmlearn's
          loop (``training.fit``) against a minimal hand-written loop (target >= 0.9), and the
          share of each step spent waiting on data (target < 10%)      [loop_overhead.py]
part1     the article's network vs the formula's: step, epoch, accuracy  [part1_throughput.py]
speedups  channels-last, mixed precision, torch.compile, XLA, tf.function, each off and on
                                                                         [speedups.py]
part2     the image-text model's training and encoding rates on real data [part2_throughput.py]
book      wall time of the whole book per profile, from the recorded run times [book_time.py]
loaders   time to first batch of every data loader, cold and warm       [loaders.py]

Batch sizes are the ``standard`` profile's (``mmlearn.config.SIZES``) unless ``--batch-size``
replaces them all. ``--quick`` takes fewer and shorter measurements (a minute or two, noisier);
a full run takes about ten minutes on a 2-core CPU. Runs on the device ``mmlearn`` picks
(``MMLEARN_DEVICE`` or ``--device`` to choose): on a GPU every section runs there.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback

import mmlearn as mm  # first: thread counts, and PyTorch before TensorFlow

from common import fmt_rate, heading, machine_lines, table

SECTIONS = ("models", "part1", "speedups", "part2", "book", "loaders")
DEFAULT_SECTIONS = ("models", "part1", "speedups", "part2", "book")


def settings(quick: bool) -> dict:
    """How long each measurement runs: seconds per timed epoch, repeats, steps."""
    if quick:
        return {"run_seconds": 0.2, "repeats": 2, "min_steps": 2, "keras_steps": 3, "article_steps": 1,
                "article_batch": 2, "part1_epochs": 1, "part1_n_train": 512, "speedup_steps": 3,
                "part2_steps": 2}
    return {"run_seconds": 0.7, "repeats": 7, "min_steps": 5, "keras_steps": 20, "article_steps": 2,
            "article_batch": mm.run_size("deconv.article_timing", "standard").batch_size,
            "part1_epochs": 2, "part1_n_train": None, "speedup_steps": 10, "part2_steps": 5}


def _selected(case_makers, names):
    chosen = []
    for make in case_makers:
        case = make()
        if not names or any(n.lower() in case.name.lower() for n in names):
            chosen.append(make)
    return chosen


def section_models(args, s, device) -> None:
    import cases
    import loop_overhead as lo
    import part1_throughput as p1

    heading("Training throughput: mmlearn's loop vs a minimal hand loop, data wait")
    print(f"data: {cases.DATA_NOTE}; each epoch ~{s['run_seconds']} s, {s['repeats']} interleaved "
          f"repeats, medians")
    results, failed = [], []
    for make in _selected(cases.all_cases(), args.models):
        case = make()
        try:
            results.append(lo.measure_case(case, device, s["run_seconds"], s["repeats"], args.batch_size,
                                           min_steps=s["min_steps"]))
        except Exception as err:  # one broken model must not hide the others' figures
            failed.append(f"{case.name}: {type(err).__name__}: {err}")
    rows = lo.rows(results)
    if not args.models or any(n.lower() in "formulanet" for n in args.models):
        try:
            rows += lo.rows([lo.measure_keras_formula(s["keras_steps"], s["repeats"], args.batch_size)])
        except Exception as err:
            failed.append(f"Keras FormulaNet: {type(err).__name__}: {err}")
    if not args.models or any(n.lower() in "articlenet" for n in args.models):
        b = args.batch_size or s["article_batch"]
        for framework, chapter in (("PyTorch", "I.5"), ("Keras", "I.4")):
            step = p1.step_seconds(framework, "article", b, s["article_steps"])
            rows.append(["ArticleNet", chapter, framework, b, "images", "-", fmt_rate(b / step),
                         "- (steps take seconds)", "-"])
    print(table(lo.HEADERS, rows))
    print(f"loop items/s: mmlearn.training.fit fed by the chapter's batching (Keras: model.fit); hand items/s: "
          f"forward/backward/step over the same batches already on the device. The targets judge "
          f"mmlearn's loop; the Keras row is Keras' own fit. ArticleNet: "
          f"{s['article_steps']} step(s) after a warm-up, hand loop (train_step_seconds).")
    for r in results:
        r["ratio"] = lo.median(r["ratios"])
    if results:
        loop_ok = sum(r["ratio"] >= lo.LOOP_TARGET for r in results)
        wait_ok = sum(r["wait"] < lo.WAIT_TARGET for r in results)
        print(f"targets (PyTorch rows): loop/hand >= {lo.LOOP_TARGET} in {loop_ok} of {len(results)}; "
              f"data wait < {lo.WAIT_TARGET:.0%} in {wait_ok} of {len(results)}. Data wait is host time "
              f"fetching a batch and starting its copy.")
    for line in failed:
        print(f"not measured: {line}")

    cost = lo.loop_cost(device, s["repeats"])
    print(f"fit's own cost per step (a linear layer, batch 64): fit {cost['fit_us']:.0f} us vs hand "
          f"{cost['hand_us']:.0f} us per step, +{cost['fit_us'] - cost['hand_us']:.0f} us; ArrayBatches: "
          f"{cost['batch_us']:.0f} us per batch of 64 pictures (3x32x32 float32)")

    heading("Evaluation: training.predict vs a direct no_grad loop")
    evaluated = []
    for make in _selected([cases.formula_net, *(lambda v=v: cases.fusion(v) for v in ("concat", "deconv")),
                           cases.spoken_digits], args.models):
        evaluated.append(lo.measure_predict(make(), device, s["repeats"]))
    print(table(["model", "batch", "inputs", "predict items/s", "hand items/s", "predict/hand"],
                [[e["name"], e["batch"], e["n"], fmt_rate(e["predict"]), fmt_rate(e["hand"]),
                  f"{e['predict'] / e['hand']:.2f}"] for e in evaluated]))
    print("hand: model(*inputs) over slices of tensors already on the device; predict: from host arrays, "
          "in batches, outputs gathered on the CPU")


def section_part1(args, s, device) -> None:
    import part1_throughput as p1

    heading("Part I: the article's network vs the formula's")
    p1.report(p1.measure(args.batch_size or s["article_batch"], s["article_steps"], s["part1_epochs"],
                         n_train=s["part1_n_train"]))


def section_speedups(args, s, device) -> None:
    import cases
    import speedups as sp

    heading("Speed-ups, each off and on")
    makers = _selected([cases.formula_net, cases.dual_encoder] if not args.quick else [cases.formula_net],
                       args.models)
    rows = sp.torch_rows(makers, device, s["speedup_steps"], args.batch_size, compile_cases=("FormulaNet",),
                         quick=args.quick)
    if not args.models or any(n.lower() in "formulanet" for n in args.models):
        rows += sp.keras_rows(s["speedup_steps"], args.batch_size, eager_steps=2 if args.quick else 3)
    print(table(sp.HEADERS, sp.format_rows(rows)))
    print("on vs off: step time off / on (above 1: the speed-up helps here). Median single steps; PyTorch rows: "
          "a hand loop over batches on the device, off and on measured in alternation.")


def section_part2(args, s, device) -> None:
    import part2_throughput as p2

    heading("Part II: the image-text model, training and encoding")
    p2.report(p2.measure(args.batch_size or mm.run_size("image_text.contrastive", "standard").batch_size,
                         s["part2_steps"]))


def section_book(args, s, device) -> None:
    import book_time

    heading("The whole book: wall time per profile")
    book_time.report()


def section_loaders(args, s, device) -> None:
    import loaders

    heading("Data loaders: time to the first batch")
    loaders.main()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[5:]))
    parser.add_argument("--quick", action="store_true", help="fewer, shorter measurements")
    parser.add_argument("--batch-size", type=int, default=None, help="one batch size for every model")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="sets MMLEARN_DEVICE (default: what mmlearn picks)")
    parser.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--models", default="", help="comma-separated parts of model names to keep")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m.strip()]
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in sections if x not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.device:
        os.environ["MMLEARN_DEVICE"] = args.device
    device = mm.get_device()
    s = settings(args.quick)
    start = time.perf_counter()
    print(f"mmlearn benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
          f"{'--quick (noisier)' if args.quick else 'full run'}: {', '.join(sections)}")
    print("\n".join(machine_lines(device)))
    print("batch sizes: " + (f"{args.batch_size} for every model (--batch-size)" if args.batch_size else
                             "each model's standard-profile batch (mmlearn.config.SIZES), shown per row"))
    status = 0
    for name in sections:
        try:
            globals()[f"section_{name}"](args, s, device)
        except Exception:
            status = 1
            print(f"section {name} failed:\n{traceback.format_exc()}")
        sys.stdout.flush()
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
