"""The benchmark command runs end to end and prints its figures next to their targets, and each
of its cases trains the model its chapter builds."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmlearn.models import audio, crossmodal, deconv, fusion, generation, vqa

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
sys.path.insert(0, str(ROOT / "bench"))
import cases  # noqa: E402  (bench/ is not a package)


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


# --- each case is its chapter's model -----------------------------------------------------------

# case -> (the chapter that trains the model, the named configuration it builds, that model)
CHAPTER_MODELS = {
    "FormulaNet": ("part1/05_pytorch", "FORMULA", lambda: deconv.build(deconv.FORMULA)),
    "fusion: image": ("part1/06_multimodal", "IMAGE", lambda: fusion.build(fusion.IMAGE)),
    "fusion: audio": ("part1/06_multimodal", "AUDIO", lambda: fusion.build(fusion.AUDIO)),
    "fusion: concat": ("part1/06_multimodal", "CONCAT", lambda: fusion.build(fusion.CONCAT)),
    "fusion: deconv": ("part1/06_multimodal", "DECONV", lambda: fusion.build(fusion.DECONV)),
    "DualEncoder (image-text)": ("part2/04_image_text", "IMAGE_TEXT", lambda: crossmodal.build(
        dataclasses.replace(crossmodal.IMAGE_TEXT, pretrained_image=False), verbose=False)),  # same layers
    "VQA image tower": ("part2/05c_image_understanding", "EASY_VQA",
                        lambda: vqa.TowerPretrainer(vqa.build(vqa.EASY_VQA).image)),
    "VQA attention model": ("part2/05c_image_understanding", "EASY_VQA", lambda: vqa.build(vqa.EASY_VQA)),
    "spoken-digit classifier": ("part2/05d_speech_recognition", "SPOKEN_DIGITS",
                                lambda: audio.build(audio.SPOKEN_DIGITS)),
    "voice retrieval": ("part2/05f_voice_commands", "VOICE_IMAGE", lambda: audio.build(audio.VOICE_IMAGE)),
    "generator (conditional VAE)": ("part2/05b_image_generation", "CVAE", lambda: generation.build(generation.CVAE)),
    "generation judge (ShapeClassifier)": ("part2/05b_image_generation", "ShapeClassifier",
                                           lambda: generation.ShapeClassifier()),
}
CASES = [make() for make in cases.all_cases()]   # cheap: a case builds its model only when asked


def structure(model) -> tuple:
    """What makes two models the same network: the module tree as printed, and every parameter's
    and buffer's name, shape and trainability."""
    return (repr(model), [(n, tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()],
            [(n, tuple(b.shape)) for n, b in model.named_buffers()])


def test_every_case_has_its_chapters_model():
    names = {case.name for case in CASES}
    assert names == set(CHAPTER_MODELS), (
        "each benchmark case names, in CHAPTER_MODELS, the chapter configuration it measures")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_case_trains_the_model_its_chapter_builds(case):
    _, _, chapter_model = CHAPTER_MODELS[case.name]
    assert structure(case.build()) == structure(chapter_model()), (
        f"bench/cases.py's {case.name!r} is not the model its chapter builds: build it with the "
        "family's build() and the chapter's configuration")


@pytest.mark.parametrize("name", sorted(CHAPTER_MODELS))
def test_the_chapter_builds_the_named_configuration(name):
    notebook, config, _ = CHAPTER_MODELS[name]
    cells = json.loads((ROOT / "chapters" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert re.search(rf"\b\w+\.{config}\b", code), (
        f"{notebook} no longer builds {config}; bench/cases.py measures that configuration")
