"""easy-VQA: 64x64 pictures of one coloured shape each, with questions and answers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from mmlearn.data.store import DataError, cached_arrays, package_dir, verified


@dataclasses.dataclass(frozen=True)
class VQASplit:
    """``images``: uint8 (N_img, 64, 64, 3); ``questions``/``answers``: lists of str, one per
    question; ``image_index``: int64 (N_q,), the row of ``images`` each question is about."""

    images: np.ndarray
    questions: list
    answers: list
    image_index: np.ndarray


@dataclasses.dataclass(frozen=True)
class VQADataset:
    train: VQASplit
    test: VQASplit
    answer_vocab: tuple[str, ...]
    source: str
    is_real: bool = True


def load_easy_vqa() -> VQADataset:
    """easy-VQA: 64x64 RGB images of one coloured shape each, with questions and answers.

    4,000 train / 1,000 test images (the package's own split) with 38,575 / 9,673 questions
    and 13 possible answers.
    """
    root = package_dir("easy_vqa") / "data"

    def read_split(split):
        questions = json.loads(verified(root / split / "questions.json",
                                        f"easy_vqa/{split}/questions.json").read_text())

        def build():
            from PIL import Image

            paths = sorted((root / split / "images").glob("*.png"), key=lambda p: int(p.stem))
            if [int(p.stem) for p in paths] != list(range(len(paths))):
                raise DataError(f"{root / split / 'images'} should hold 0.png ... N.png without gaps; "
                                "reinstall easy-vqa")
            return {"images": np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])}

        images = cached_arrays(f"easy_vqa_{split}", build)["images"]
        return VQASplit(images, [q for q, _, _ in questions], [a for _, a, _ in questions],
                        np.array([i for _, _, i in questions], dtype=np.int64))

    answers = verified(root / "answers.txt", "easy_vqa/answers.txt").read_text().split()
    return VQADataset(read_split("train"), read_split("test"), tuple(answers), source="easy-VQA")
