"""What every benchmark section shares: timing, the machine's description, and tables.

Benchmarks print figures for the machine they run on; they are not tests. Times are wall-clock
seconds from ``time.perf_counter``, with the accelerator synchronised before each reading.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import mmlearn as mm  # first: thread counts, and PyTorch before TensorFlow
import torch


def sync(device: torch.device | None = None) -> None:
    """Wait for queued accelerator work, so that a clock reading covers it."""
    device = mm.get_device() if device is None else device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds(fn: Callable[[], object], device: torch.device | None = None) -> float:
    """Wall time of one call of ``fn``, accelerator work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines(device: torch.device) -> list[str]:
    """Lines that say where the figures come from: CPU, cores, load, threads, device, versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [f"machine: {cpu_name()}, {cores} cores usable, load average {load} (1, 5, 15 min)",
             f"threads: {mm.config.THREADS} (MMLEARN_THREADS={os.environ.get('MMLEARN_THREADS', 'unset')}), "
             f"PyTorch intra-op {torch.get_num_threads()}",
             f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
             f"software: Python {platform.python_version()}, PyTorch {torch.__version__}, mmlearn {mm.__version__}"]
    return lines


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """A plain-text table: the first ``left`` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.1f} ms"


def target(value: float, goal: float, above: bool) -> str:
    """``value`` followed by whether it meets the target (``>= goal`` or ``< goal``)."""
    ok = value >= goal if above else value < goal
    return "ok" if ok else "MISSED"
