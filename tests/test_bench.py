"""The benchmark command runs end to end and prints its figures next to their targets."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"


def run(*args, timeout=240):
    env = {**os.environ, "MMLEARN_THREADS": "1", "MMLEARN_DEVICE": "cpu"}
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_quick_run_prints_the_machine_the_figures_and_the_targets():
    result = run("--quick", "--sections", "models,book", "--models", "spoken,audio")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for expected in ("machine:", "threads: 1", "device: cpu", "batch sizes:",
                     "Training throughput", "spoken-digit classifier", "fusion: audio",
                     "loop/hand (range) >= 0.9", "data wait < 10%", "targets (PyTorch rows)",
                     "fit's own cost per step", "Evaluation: training.predict",
                     "The whole book", "execution_times.json", "smoke", "standard"):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert "not measured" not in out and "failed" not in out, out


def test_unknown_section_is_refused_with_the_choices():
    result = run("--sections", "nonsense", timeout=60)
    assert result.returncode == 2
    assert "models, part1, speedups, part2, book, loaders" in result.stderr
