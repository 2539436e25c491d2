"""The book's trainable PyTorch models as benchmark cases, each with in-memory data of its shapes.

A case holds what a chapter hands to ``mmlearn.training.fit``: a fresh model, the batches and
the loss of one batch, at the batch size the ``standard`` profile trains it with
(``mmlearn.config.SIZES``). Every model comes from its family's ``build(config)`` with the
configuration the chapter itself builds (``deconv.FORMULA``, ``fusion.DECONV``, ...), so a
change to a chapter's model reaches its case; ``tests/test_bench.py`` checks that they agree.

The data are synthetic arrays of the chapters' shapes and dtypes (random pictures, MFCCs, word
ids, labels): throughput does not depend on the values, and building them takes milliseconds
where the real loaders and feature caches take seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import mmlearn as mm
from mmlearn.training import ArrayBatches

DATA_NOTE = "synthetic in-memory arrays of each chapter's shapes and dtypes"


@dataclasses.dataclass
class Case:
    """One model of the book as ``fit`` trains it.

    ``make(n_batches, batch_size)`` returns the batches (an iterable ``fit`` accepts) holding
    exactly ``n_batches`` batches; the last element of every batch has one row per counted
    item (``unit``). ``image_input`` says whether the model reads float (B, C, H, W) pictures,
    the only inputs a channels-last memory format applies to.
    """

    name: str
    chapter: str
    experiment: str          # the SIZES row whose standard batch size is used
    unit: str
    build: Callable[[], nn.Module]
    make: Callable[[int, int], Iterable]
    loss_fn: Callable
    image_input: bool = False

    @property
    def batch_size(self) -> int:
        return mm.run_size(self.experiment, "standard").batch_size


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _labels(n: int, classes: int, seed: int = 1) -> np.ndarray:
    return _rng(seed).integers(0, classes, n).astype(np.int64)


def _cross_entropy(model, batch):
    *inputs, y = batch
    return F.cross_entropy(model(*inputs), y)


# --- Part I -----------------------------------------------------------------------------------

def formula_net() -> Case:
    from mmlearn.models import deconv as dt

    c = dt.FORMULA

    def make(n_batches, b):
        n = n_batches * b
        return ArrayBatches(_rng().random((n, c.in_channels, c.image_size, c.image_size), dtype=np.float32),
                            _labels(n, c.n_classes), batch_size=b)

    return Case("FormulaNet", "I.5", "deconv.formula", "images", lambda: dt.build(dt.FORMULA),
                make, _cross_entropy, image_input=True)


def fusion(variant: str) -> Case:
    from mmlearn.models import fusion as fu

    config = {"image": fu.IMAGE, "audio": fu.AUDIO, "concat": fu.CONCAT, "deconv": fu.DECONV}[variant]

    def make(n_batches, b):
        n = n_batches * b
        rng = _rng()
        return ArrayBatches(rng.random((n, 1, 28, 28), dtype=np.float32),
                            rng.standard_normal((n, 48, fu.N_MFCC), dtype=np.float32),
                            _labels(n, fu.N_CLASSES), batch_size=b)

    return Case(f"fusion: {variant}", "I.6", "fusion.compare", "pairs", lambda: fu.build(config),
                make, fu.classification_loss, image_input=variant != "audio")


# --- Part II ----------------------------------------------------------------------------------

def dual_encoder() -> Case:
    """Chapter II.4's two-tower model (``crossmodal.IMAGE_TEXT``: ResNet18 with the small stem on
    32 px pictures), the frozen text transformer's caption features cached, so a step trains the
    image tower and both heads (the chapter's ``crossmodal.cached_caption_loss``). The tower
    starts from random weights: they do not change its speed, and looking for the ImageNet ones
    can wait on the network."""
    from mmlearn.models import crossmodal as cm

    config = dataclasses.replace(cm.IMAGE_TEXT, pretrained_image=False)
    side = config.image_size
    state = {}

    def build():
        torch.manual_seed(0)
        model = cm.build(config, verbose=False)
        # one caption per (colour, shape, position) class is plenty for the shapes' sake
        state["loss"] = cm.cached_caption_loss(torch.randn(72, model.text.feature_dim))
        return model

    def make(n_batches, b):
        n = n_batches * b
        pictures = _rng().integers(0, 256, (n, side, side, 3), dtype=np.uint8)
        return ArrayBatches(cm.image_tensor(pictures, side), _labels(n, 72), batch_size=b, drop_last=True)

    def loss_fn(model, batch):
        return state["loss"](model, batch)

    return Case("DualEncoder (image-text)", "II.4", "image_text.contrastive", "pairs", build, make,
                loss_fn, image_input=True)


def vqa_tower() -> Case:
    """Stage 1 of chapter II.5c: the image tower learns colour and shape from uint8 pictures."""
    from mmlearn.data import shapes
    from mmlearn.models import vqa

    def make(n_batches, b):
        n = n_batches * b
        return ArrayBatches(_rng().integers(0, 256, (n, 64, 64, 3), dtype=np.uint8),
                            _labels(n, len(shapes.COLORS)), _labels(n, len(shapes.SHAPES), 2), batch_size=b)

    return Case("VQA image tower", "II.5c", "vqa.tower", "pictures",
                lambda: vqa.TowerPretrainer(vqa.build(vqa.EASY_VQA).image), make, vqa.tower_loss)


def vqa_model(questions_per_image: int = 10, length: int = 10) -> Case:
    """Stage 2 of chapter II.5c: questions attend to the frozen tower's cached regions; a batch
    holds 32 pictures and all their questions (easy-VQA asks about 10 per picture)."""
    from mmlearn.models import vqa

    config = vqa.EASY_VQA

    def make(n_batches, b):
        n_img = n_batches * b
        n_q = n_img * questions_per_image
        rng = _rng()
        ids = rng.integers(2, config.vocab_size, (n_q, length)).astype(np.int64)
        ids[:, 7:] *= rng.random((n_q, length - 7)) < 0.5          # some questions end earlier
        data = vqa.VQAArrays(images=np.zeros((n_img, 64, 64, 3), np.uint8),
                             image_index=np.repeat(np.arange(n_img), questions_per_image),
                             question_ids=ids, answer=_labels(n_q, config.n_answers), qtype=_labels(n_q, 3))
        regions = torch.randn(n_img, 64, config.dim)
        return vqa.ImageBatches(data, images_per_batch=b, seed=0, regions=regions)

    return Case("VQA attention model", "II.5c", "vqa.train", "questions",
                lambda: vqa.build(config), make, vqa.loss_fn)


def spoken_digits() -> Case:
    from mmlearn.models import audio

    def make(n_batches, b):
        n = n_batches * b
        return ArrayBatches(_rng().standard_normal((n, 48, audio.N_MFCC), dtype=np.float32),
                            _labels(n, audio.SPOKEN_DIGITS.n_classes), batch_size=b)

    return Case("spoken-digit classifier", "II.5d", "speech.digits", "recordings",
                lambda: audio.build(audio.SPOKEN_DIGITS), make, _cross_entropy)


def voice_retrieval() -> Case:
    from mmlearn.models import audio

    def make(n_batches, b):
        n = n_batches * b
        rng = _rng()
        return ArrayBatches(rng.random((n, 1, 28, 28), dtype=np.float32),
                            rng.standard_normal((n, 48, 13), dtype=np.float32), _labels(n, 10), batch_size=b)

    return Case("voice retrieval", "II.5f", "voice.retrieval", "pairs", lambda: audio.build(audio.VOICE_IMAGE),
                make, audio.voice_image_loss, image_input=True)


def generation(which: str) -> Case:
    """Part II's caption-to-picture generator (the chapter's conditional VAE, ``generation.CVAE``,
    on uint8 32 px pictures with caption features) or its judge (``ShapeClassifier``, on the
    pictures with colour and shape labels)."""
    from mmlearn.models import generation as gen

    build = {"generator": lambda: gen.build(gen.CVAE), "judge": gen.ShapeClassifier}[which]
    experiment = {"generator": "generation.generator", "judge": "generation.judge"}[which]

    def make(n_batches, b):
        n = n_batches * b
        pictures = _rng().integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        if which == "generator":  # a caption's text-tower features, (n, 384)
            return ArrayBatches(pictures, _rng().standard_normal((n, gen.CVAE.text_dim), dtype=np.float32),
                                batch_size=b)
        return ArrayBatches(pictures, _labels(n, 8), _labels(n, 3, 2), batch_size=b)

    name = {"generator": "generator (conditional VAE)", "judge": "generation judge (ShapeClassifier)"}[which]
    loss_fn = {"generator": gen.elbo_loss, "judge": gen.judge_loss}[which]
    return Case(name, "II.5b", experiment, "pictures", build, make, loss_fn)


def all_cases() -> list[Callable[[], Case]]:
    """Constructors, not cases: building one imports only what it needs."""
    return [formula_net, *(lambda v=v: fusion(v) for v in ("image", "audio", "concat", "deconv")),
            dual_encoder, vqa_tower, vqa_model, spoken_digits, voice_retrieval,
            lambda: generation("generator"), lambda: generation("judge")]
