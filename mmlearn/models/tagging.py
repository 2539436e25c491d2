"""Image annotation (tagging) on easy-VQA's shape pictures: a joint space and a classifier.

Chapter II.5a compares two ways to tag a picture with the same image tower:

* the two-tower model of :mod:`mmlearn.models.crossmodal`, trained with the contrastive loss on
  (picture, caption) pairs, whose tags are read off the joint space with
  :func:`mmlearn.models.crossmodal.tag_probabilities`;
* :class:`TagClassifier`, the usual multi-label tagger: one sigmoid output per tag word,
  trained with binary cross-entropy on the same pictures.

Both train with :func:`fit_tagger`'s recipe (AdamW with a one-cycle schedule, the one
:func:`mmlearn.models.crossmodal.fit_on_captions` uses) so that only the supervision differs.
:class:`ShapeTower` is small enough for three seeds of each on a CPU. :func:`build` makes either
from a :class:`Config`: :data:`JOINT` and :data:`CLASSIFIER` are the chapter's two.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from mmlearn.models import crossmodal as cm
from mmlearn import training
from mmlearn.data import shapes
from mmlearn.blocks import ImageRegions, ProjectionHead, check_region_images


class ShapeTower(nn.Module):
    """uint8 pictures (B, 64, 64, 3) -> embeddings (B, embed_dim).

    The four-layer CNN of :class:`mmlearn.blocks.ImageRegions` (8 x 8 regions with a learned
    position embedding), its regions flattened so that where the shape lies survives, and a
    :class:`mmlearn.blocks.ProjectionHead` into the joint space.
    """

    def __init__(self, embed_dim: int = 128, dim: int = 32, width: int = 16):
        super().__init__()
        self.regions = ImageRegions(dim, width)
        self.head = ProjectionHead(64 * dim, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_region_images(images)
        return self.head(self.regions(images).flatten(1))       # (B, 64, dim) -> (B, embed_dim)


class TagClassifier(nn.Module):
    """The multi-label baseline: an image tower and one logit per tag, (B, n_tags)."""

    def __init__(self, tower: nn.Module, embed_dim: int, n_tags: int):
        super().__init__()
        if n_tags < 1:
            raise ValueError(f"n_tags must be at least 1, got {n_tags}")
        self.image = tower
        self.out = nn.Linear(embed_dim, n_tags)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.image(images))

    @torch.no_grad()
    def probabilities(self, images, batch_size: int = 256) -> np.ndarray:
        """p(tag | picture) = sigmoid(logit), float (N, n_tags)."""
        return torch.sigmoid(training.predict(self, torch.as_tensor(images), batch_size=batch_size)).numpy()


KINDS = ("joint", "classifier")


@dataclasses.dataclass(frozen=True)
class Config:
    """``"joint"``: the two-tower model, a :class:`ShapeTower` for pictures and the frozen text
    tower (a :class:`mmlearn.models.crossmodal.DualEncoder`); ``"classifier"``: a :class:`TagClassifier`
    on the same tower."""

    kind: str = "joint"
    embed_dim: int = 128
    n_tags: int = len(shapes.TAG_NAMES)   # the classifier's outputs

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")


JOINT = Config("joint")            # chapter II.5a's two taggers
CLASSIFIER = Config("classifier")


def build(config: Config, verbose: bool = True) -> nn.Module:
    """The tagger ``config`` describes; ``verbose``: say in one line when the text tower falls
    back to the bundled MiniLM."""
    if config.kind == "joint":
        return cm.DualEncoder(ShapeTower(config.embed_dim), cm.TextEncoder(config.embed_dim, verbose=verbose))
    return TagClassifier(ShapeTower(config.embed_dim), config.embed_dim, config.n_tags)


def _bce(model: TagClassifier, batch) -> torch.Tensor:
    images, tags = batch
    return nn.functional.binary_cross_entropy_with_logits(model(images), tags.float())


def fit_tagger(model: nn.Module, images, targets, *, epochs: int, batch_size: int, lr: float = 3e-3,
               caption_features: torch.Tensor | None = None, evaluate=None, verbose: bool = True):
    """Train a :class:`TagClassifier` on bool tags (N, n_tags), or, with ``caption_features``,
    a dual encoder on caption ids (N,) with the contrastive loss: AdamW (weight decay 1e-4)
    and a one-cycle schedule over every step. Returns ``fit``'s history."""
    images, targets = torch.as_tensor(images), torch.as_tensor(np.asarray(targets))
    if len(images) != len(targets):
        raise ValueError(f"expected one target row per picture, got {len(images)} pictures and "
                         f"{len(targets)} rows")
    if caption_features is None and not isinstance(model, TagClassifier):
        raise ValueError("a dual encoder trains on captions: pass caption_features (the pooled text "
                         "features of every caption, indexed by the targets)")
    batches = training.ArrayBatches(images, targets, batch_size=batch_size, drop_last=True)
    if len(batches) == 0:
        raise ValueError(f"batch_size={batch_size} exceeds the {len(images)} training pictures")
    optimizer = training.one_cycle_adamw(model, lr, epochs * len(batches))
    loss_fn = _bce if caption_features is None else cm.cached_caption_loss(caption_features)
    return training.fit(model, batches, loss_fn, epochs=epochs, optimizer=optimizer,
                        evaluate=evaluate, verbose=verbose)


@torch.no_grad()
def joint_tag_probabilities(model: cm.DualEncoder, images, caption_features: torch.Tensor, caption_tags,
                            batch_size: int = 256) -> np.ndarray:
    """p(tag | picture) read off a dual encoder, float (N, T): ``caption_features`` (C, H) are the
    frozen text tower's pooled features of C captions in any wording
    (``model.text.pooled_features(captions)``, computed once), ``caption_tags`` (C, T) bool says
    which tags each caption states; then :func:`mmlearn.models.crossmodal.tag_probabilities` with the
    model's temperature."""
    image_emb = training.predict(model.image, torch.as_tensor(images), batch_size=batch_size)
    caption_emb = model.text.head(caption_features)
    return cm.tag_probabilities(image_emb, caption_emb, caption_tags, model.logit_scale()).numpy()
