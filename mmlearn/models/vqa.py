"""Visual question answering on easy-VQA with attention fusion (PyTorch).

The model reads like its figure, top to bottom:

* the question: word ids -> a learned embedding -> two 1-D convolutions -> one state per token;
* the image: :class:`mmlearn.blocks.ImageRegions`, a small strided CNN -> an 8 x 8 grid of
  region features with a learned position embedding (easy-VQA has no region that matters more
  than another, so no pretrained detector);
* the fusion: every question token attends to the image regions through
  :class:`mmlearn.blocks.CrossAttention` (queries = tokens, keys and values = regions);
  the attended image features are added to the token states and pooled over the real
  (unmasked) tokens; with a max-pooled summary of the regions and the product of the two, a
  small MLP picks one of the 13 answers.

Two ablations come with it: ``fusion="mean"`` replaces the attention by uniform weights (every
token gets the mean of the regions' values), to ask whether *where* a token looks matters;
``summary=False`` hands the classifier zeros instead of the max-pooled regions, so the picture
reaches the answer through the attention alone. :func:`shuffle_blocks` and
:func:`attention_localisation` test what the image side uses and where the attention points.

Training goes in two stages (:class:`TowerPretrainer`, :func:`cache_regions`,
:func:`train_on_regions`): the image tower first learns colour and shape from the pictures
alone (the very facts easy-VQA's answers are about), is frozen, and its regions are cached;
then the question side and the fusion learn on the cached regions. :func:`build` makes the
network from a :class:`Config`; :data:`EASY_VQA` is the chapter's.

The question vocabulary is built from the training questions only; unseen words map to
``<unk>``. Answers are grouped into three question types (colour, shape, yes/no) so accuracy
can be reported per type.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import numpy as np
import torch
from torch import nn

from mmlearn.data import shapes
from mmlearn.blocks import REGIONS_IMAGE_SIZE, CrossAttention, ImageRegions, check_region_images
from mmlearn.training import ArrayBatches, fit

PAD, UNK = "<pad>", "<unk>"
QUESTION_TYPES = ("colour", "shape", "yes/no")
FUSIONS = ("attention", "mean")


# --- questions and answers as arrays ---------------------------------------------------------

def tokenize(question: str) -> list[str]:
    """Lower-case words of a question, punctuation dropped: "Is it red?" -> ["is", "it", "red"]."""
    if not isinstance(question, str):
        raise TypeError(f"expected a question as str, got {type(question).__name__}")
    return re.findall(r"[a-z]+", question.lower())


def question_type(answer: str) -> str:
    """"colour", "shape" or "yes/no", read from the answer (easy-VQA's answers say which)."""
    if answer in shapes.COLORS:
        return "colour"
    if answer in shapes.SHAPES:
        return "shape"
    if answer in ("yes", "no"):
        return "yes/no"
    raise ValueError(f"unknown easy-VQA answer {answer!r}; expected one of "
                     f"{', '.join(shapes.COLORS + shapes.SHAPES + ('yes', 'no'))}")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Word <-> id, with id 0 = padding and id 1 = unknown word."""

    words: tuple[str, ...]

    @classmethod
    def build(cls, questions) -> "Vocabulary":
        if len(questions) == 0:
            raise ValueError("Vocabulary.build needs at least one question, got an empty list")
        counts = Counter(w for q in questions for w in tokenize(q))
        return cls((PAD, UNK) + tuple(sorted(counts)))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, questions, length: int | None = None) -> np.ndarray:
        """int64 (N, length) word ids, zero-padded on the right (length: longest question)."""
        if len(questions) == 0:
            raise ValueError("expected a non-empty list of questions (str), got an empty list")
        index = {w: i for i, w in enumerate(self.words)}
        tokens = [tokenize(q) for q in questions]
        length = max(len(t) for t in tokens) if length is None else length
        ids = np.zeros((len(tokens), length), dtype=np.int64)
        for row, words in enumerate(tokens):
            ids[row, :min(length, len(words))] = [index.get(w, 1) for w in words[:length]]
        return ids


@dataclasses.dataclass(frozen=True)
class VQAArrays:
    """One split as arrays: ``images`` uint8 (N_img, 64, 64, 3); per question ``image_index``
    int64 (N_q,), ``question_ids`` int64 (N_q, T), ``answer`` int64 (N_q,) and ``qtype`` int64
    (N_q,) indexing :data:`QUESTION_TYPES`."""

    images: np.ndarray
    image_index: np.ndarray
    question_ids: np.ndarray
    answer: np.ndarray
    qtype: np.ndarray

    def by_images(self, keep) -> "VQAArrays":
        """The questions about the pictures ``keep`` (bool (N_img,)); the images stay whole."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self.images),):
            raise ValueError(f"expected one bool per picture, shape ({len(self.images)},), got {keep.shape}")
        rows = keep[self.image_index]
        return dataclasses.replace(self, image_index=self.image_index[rows],
                                   question_ids=self.question_ids[rows], answer=self.answer[rows],
                                   qtype=self.qtype[rows])

    def split_images(self, n_validation: int, seed: int = 0) -> tuple["VQAArrays", "VQAArrays"]:
        """(train, validation): the questions of ``n_validation`` pictures drawn at random go to
        validation, so no validation picture is seen in training."""
        if not 0 < n_validation < len(self.images):
            raise ValueError(f"n_validation must lie between 1 and {len(self.images) - 1} pictures, "
                             f"got {n_validation}")
        held = np.zeros(len(self.images), dtype=bool)
        held[np.random.default_rng(seed).permutation(len(self.images))[:n_validation]] = True
        return self.by_images(~held), self.by_images(held)

    def subset(self, n: int | None, seed: int = 0) -> "VQAArrays":
        """``n`` questions drawn at random (``None`` keeps all); the images stay whole."""
        if n is None or n >= len(self.answer):
            return self
        keep = np.sort(np.random.default_rng(seed).permutation(len(self.answer))[:n])
        return dataclasses.replace(self, image_index=self.image_index[keep],
                                   question_ids=self.question_ids[keep], answer=self.answer[keep],
                                   qtype=self.qtype[keep])


def to_arrays(split, vocab: Vocabulary, answer_vocab, length: int) -> VQAArrays:
    """A :class:`mmlearn.data.VQASplit` as :class:`VQAArrays`."""
    check_region_images(split.images)
    answer_index = {a: i for i, a in enumerate(answer_vocab)}
    return VQAArrays(images=split.images, image_index=np.asarray(split.image_index, dtype=np.int64),
                     question_ids=vocab.encode(split.questions, length),
                     answer=np.array([answer_index[a] for a in split.answers], dtype=np.int64),
                     qtype=np.array([QUESTION_TYPES.index(question_type(a)) for a in split.answers],
                                    dtype=np.int64))


# --- the question encoder (the image side is blocks.ImageRegions) ---------------------------

class QuestionEncoder(nn.Module):
    """Word ids (B, T) -> token states (B, T, dim) and the mask of real tokens (B, T).

    A word embedding plus a learned position embedding, then two 1-D convolutions over
    neighbouring words (each token state sees five words, enough for "is there not a red
    shape"). A GRU reads the same way but steps through the words one by one, several times
    slower on a CPU for no gain on questions this short.
    """

    def __init__(self, vocab_size: int, dim: int = 64, max_length: int = 16):
        super().__init__()
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, 3, padding=1) for _ in range(2))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor):
        if ids.dim() != 2 or ids.shape[1] > self.max_length:
            raise ValueError(f"expected word ids of shape (B, T) with T <= {self.max_length}, got "
                             f"{tuple(ids.shape)}")
        real = ids != 0                                          # (B, T), True on words
        h = self.embed(ids) + self.position[:, :ids.shape[1]]    # (B, T, dim)
        keep = real.unsqueeze(-1).float()
        for conv in self.convs:                                  # (B, T, dim) -> (B, T, dim)
            h = h + torch.relu(conv((h * keep).transpose(1, 2))).transpose(1, 2)
        return self.norm(h), real


# --- the network -----------------------------------------------------------------------------

class AttentionVQA(nn.Module):
    """Question tokens attend to image regions; the fused tokens vote for an answer.

    ``forward(images, ids)`` returns answer logits (B, n_answers); with
    ``return_attention=True`` also the attention weights (B, T, 64) of every token over the
    regions (rows of padding tokens are ignored by the pooling).
    """

    def __init__(self, vocab_size: int, n_answers: int, dim: int = 64, heads: int = 4,
                 width: int = 16, fusion: str = "attention", summary: bool = True):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {', '.join(FUSIONS)}")
        self.fusion, self.use_summary = fusion, summary
        self.question = QuestionEncoder(vocab_size, dim)
        self.image = ImageRegions(dim, width)
        self.attend = CrossAttention(dim, num_heads=heads)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(3 * dim, 2 * dim), nn.ReLU(inplace=True),
                                  nn.Linear(2 * dim, n_answers))

    def forward(self, images: torch.Tensor, ids: torch.Tensor, owner: torch.Tensor | None = None,
                return_attention: bool = False):
        """``images`` uint8 (B_img, 64, 64, 3), ``ids`` (B, T); ``owner`` int64 (B,) says which
        image each question is about (default: question i is about image i). Each image is
        encoded once however many questions ask about it."""
        if owner is None:
            if images.shape[0] != ids.shape[0]:
                raise ValueError(f"images and questions must come in equal numbers, or pass owner= "
                                 f"(the image row of each question); got {images.shape[0]} images "
                                 f"and {ids.shape[0]} questions")
        elif owner.shape != ids.shape[:1]:
            raise ValueError(f"owner must hold one image row per question, shape ({ids.shape[0]},), "
                             f"got {tuple(owner.shape)}")
        return self.answer(self.image(images), ids, owner, return_attention)

    def answer(self, regions: torch.Tensor, ids: torch.Tensor, owner: torch.Tensor | None = None,
               return_attention: bool = False):
        """The fusion and the classifier on region features (B_img, 64, dim) computed before,
        e.g. cached from a frozen image tower (see :func:`cache_regions`)."""
        tokens, real = self.question(ids)                        # (B, T, dim), (B, T)
        summary = regions.amax(dim=1)                            # (B_img, 64, dim) -> (B_img, dim)
        if not self.use_summary:                                 # the ablation: the picture only
            summary = torch.zeros_like(summary)                  # reaches the answer via attention
        if owner is not None:
            regions, summary = regions[owner], summary[owner]    # -> (B, 64, dim), (B, dim)
        if self.fusion == "attention":
            seen, weights = self.attend(tokens, regions)         # (B, T, dim), (B, T, 64)
        else:                                                    # uniform weights over the regions
            _, _, w_v = self.attend.in_proj_weight.chunk(3)
            value = nn.functional.linear(regions.mean(1), w_v, self.attend.in_proj_bias.chunk(3)[2])
            seen = self.attend.out_proj(value).unsqueeze(1).expand_as(tokens)  # (B, T, dim)
            weights = torch.full((*tokens.shape[:2], regions.shape[1]), 1.0 / regions.shape[1],
                                 device=tokens.device)
        fused = self.norm(tokens + seen)                         # (B, T, dim)
        keep = real.unsqueeze(-1).float()                        # (B, T, 1)
        pooled = (fused * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, dim)
        both = torch.cat([pooled, summary, pooled * summary], dim=-1)  # (B, 3 dim)
        logits = self.head(both)                                 # (B, 3 dim) -> (B, n_answers)
        return (logits, weights) if return_attention else logits


class TowerPretrainer(nn.Module):
    """Stage 1 of the two-stage recipe: teach :class:`ImageRegions` to see colour and shape.

    Two linear heads read the max-pooled regions; ``loss`` is the sum of the two
    cross-entropies on a batch (images uint8 (B, 64, 64, 3), colour (B,), shape (B,)) whose
    labels come from :func:`mmlearn.data.shapes.read_facts`. Afterwards the tower is frozen and its
    regions are cached with :func:`cache_regions`, the way VQA systems reuse a pretrained
    detector's features.
    """

    def __init__(self, tower: ImageRegions):
        super().__init__()
        self.tower = tower
        dim = tower.position.shape[-1]
        self.color = nn.Linear(dim, len(shapes.COLORS))
        self.shape = nn.Linear(dim, len(shapes.SHAPES))

    def forward(self, images: torch.Tensor):
        summary = self.tower(images).amax(dim=1)                 # (B, 64, dim) -> (B, dim)
        return self.color(summary), self.shape(summary)



def tower_loss(model: TowerPretrainer, batch) -> torch.Tensor:
    """``loss_fn`` for ``training.fit`` on (images, colour, shape) batches: the two heads'
    cross-entropies, added."""
    images, color, shape = batch
    color_logits, shape_logits = model(images)
    return nn.functional.cross_entropy(color_logits, color) + nn.functional.cross_entropy(shape_logits, shape)


@torch.no_grad()
def cache_regions(tower: ImageRegions, images, batch_size: int = 250) -> torch.Tensor:
    """Region features float32 (N, 64, dim) of uint8 images (N, 64, 64, 3), tower in eval mode."""
    check_region_images(images)
    tower.eval()
    device = next(tower.parameters()).device
    images = torch.as_tensor(images)
    return torch.cat([tower(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int
    n_answers: int = 13
    dim: int = 64
    heads: int = 4
    width: int = 16
    fusion: str = "attention"
    summary: bool = True      # False: the classifier gets zeros instead of the max-pooled regions


EASY_VQA = Config(vocab_size=28, n_answers=13)  # chapter II.5c: easy-VQA's 26 question words + <pad>, <unk>


def build(config: Config) -> AttentionVQA:
    """The network of this module from a :class:`Config`."""
    if config.vocab_size < 3:
        raise ValueError(f"vocab_size must count <pad>, <unk> and at least one word, got "
                         f"{config.vocab_size}")
    return AttentionVQA(config.vocab_size, config.n_answers, config.dim, config.heads, config.width,
                        config.fusion, config.summary)


# --- training and evaluation -----------------------------------------------------------------

class ImageBatches:
    """Mini-batches grouped by image, for ``training.fit``: each batch holds ``images_per_batch``
    images (uint8 (B_img, 64, 64, 3)) and *all* their questions: ``owner`` (B,) the image row
    of each question, ``ids`` (B, T) and ``answer`` (B,). Every image is encoded once per
    batch instead of once per question, about ten times less convolution work on easy-VQA."""

    def __init__(self, data: VQAArrays, images_per_batch: int, shuffle: bool = True, seed: int = 0,
                 regions: torch.Tensor | None = None):
        if regions is not None and len(regions) != len(data.images):
            raise ValueError(f"expected cached regions for every picture, ({len(data.images)}, 64, dim), "
                             f"got {tuple(regions.shape)}")
        self.data = data
        self.images = torch.as_tensor(data.images) if regions is None else regions
        counts = np.bincount(data.image_index, minlength=len(data.images))
        self.by_image = np.argsort(data.image_index, kind="stable")  # question rows, image by image
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        asked = np.flatnonzero(counts)                           # images with at least one question
        self.rows = ArrayBatches(asked, batch_size=images_per_batch, shuffle=shuffle, seed=seed)

    def __len__(self) -> int:
        return len(self.rows)

    def groups(self):
        """(image rows (B_img,), question rows (B,), owner (B,)) of each batch."""
        for (image_rows,) in self.rows:
            image_rows = image_rows.numpy()
            questions = [self.by_image[self.starts[i]:self.starts[i + 1]] for i in image_rows]
            owner = np.repeat(np.arange(len(image_rows)), [len(q) for q in questions])
            yield image_rows, np.concatenate(questions), owner

    def __iter__(self):
        for image_rows, q, owner in self.groups():
            yield (self.images[image_rows], torch.as_tensor(owner),
                   torch.as_tensor(self.data.question_ids[q]), torch.as_tensor(self.data.answer[q]))


def loss_fn(model: AttentionVQA, batch) -> torch.Tensor:
    """Cross-entropy of one :class:`ImageBatches` batch: uint8 pictures go through the image
    tower, float region features (cached from a frozen tower) straight to the fusion."""
    images, owner, ids, answer = batch
    logits = model(images, ids, owner) if images.dtype == torch.uint8 else model.answer(images, ids, owner)
    return nn.functional.cross_entropy(logits, answer)


@torch.no_grad()
def predict_answers(model: AttentionVQA, data: VQAArrays, images_per_batch: int = 64,
                    return_attention: bool = False, regions: torch.Tensor | None = None):
    """Predicted answer ids (N_q,), in the order of ``data``'s questions; with
    ``return_attention=True`` also the attention weights, float32 (N_q, T, 64). Pass the
    cached ``regions`` of ``data.images`` to skip the image tower."""
    model.eval()
    device = next(model.parameters()).device
    predicted = np.empty(len(data.answer), dtype=np.int64)
    attention = np.empty((*data.question_ids.shape, 64), dtype=np.float32) if return_attention else None
    batches = ImageBatches(data, images_per_batch, shuffle=False, regions=regions)
    for image_rows, q, owner in batches.groups():
        inputs = (batches.images[image_rows].to(device), torch.as_tensor(data.question_ids[q]).to(device),
                  torch.as_tensor(owner).to(device))
        logits, weights = (model(*inputs, return_attention=True) if regions is None
                           else model.answer(*inputs, return_attention=True))
        predicted[q] = logits.argmax(1).cpu().numpy()
        if return_attention:
            attention[q] = weights.cpu().numpy()
    return (predicted, attention) if return_attention else predicted


def accuracy_by_type(predicted, data: VQAArrays) -> dict[str, float]:
    """Accuracy overall and per question type: ``{"all": ..., "colour": ..., ...}``."""
    predicted = np.asarray(predicted)
    if predicted.shape != data.answer.shape:
        raise ValueError(f"expected one predicted answer per question {data.answer.shape}, got "
                         f"{predicted.shape}")
    correct = predicted == data.answer
    result = {"all": float(correct.mean())}
    for t, name in enumerate(QUESTION_TYPES):
        result[name] = float(correct[data.qtype == t].mean())
    return result


# --- ablations and diagnostics ---------------------------------------------------------------

def shuffle_blocks(images, block: int = 8, seed: int = 0) -> np.ndarray:
    """uint8 pictures (N, 64, 64, 3) with their ``block`` x ``block`` px tiles permuted, a new
    order per picture: colours stay, outlines and positions are destroyed."""
    check_region_images(images)
    if REGIONS_IMAGE_SIZE % block:
        raise ValueError(f"block must divide {REGIONS_IMAGE_SIZE}, got {block}")
    n, g = len(images), REGIONS_IMAGE_SIZE // block
    tiles = np.asarray(images).reshape(n, g, block, g, block, 3).transpose(0, 1, 3, 2, 4, 5)
    tiles = tiles.reshape(n, g * g, block, block, 3)
    rng = np.random.default_rng(seed)
    tiles = np.stack([t[rng.permutation(g * g)] for t in tiles])
    return tiles.reshape(n, g, g, block, block, 3).transpose(0, 1, 3, 2, 4, 5).reshape(images.shape)


def attention_localisation(weights, centre, grid: int = 8, image_size: int = REGIONS_IMAGE_SIZE) -> dict:
    """How well attention maps (N, grid * grid), regions row by row, point at the shape.

    ``centre`` (N, 2) is the shape's centre of mass (row, col) in px
    (:attr:`mmlearn.data.shapes.ShapeFacts.centre`). Returns ``hit``: the share of maps whose
    most-attended region holds the centre (chance: 1 / grid**2), the measure of the
    best-practice chapter on a finer grid; ``border``: the mean weight on the picture's outer
    ring of regions, and ``border_share``: that ring's share of the regions (what uniform
    weights give).
    """
    weights, centre = np.asarray(weights), np.asarray(centre)
    if weights.ndim != 2 or weights.shape[1] != grid * grid or centre.shape != (len(weights), 2):
        raise ValueError(f"expected weights (N, {grid * grid}) and centres (N, 2), got "
                         f"{weights.shape} and {centre.shape}")
    cell = np.clip((centre // (image_size / grid)).astype(int), 0, grid - 1)   # (N, 2) row, col
    holds = cell @ np.array([grid, 1])                                          # region index
    ring = np.ones((grid, grid), dtype=bool)
    ring[1:-1, 1:-1] = False
    return {"hit": float((weights.argmax(1) == holds).mean()), "chance": 1.0 / grid ** 2,
            "border": float(weights[:, ring.ravel()].sum(1).mean()), "border_share": float(ring.mean())}


def question_maps(attention, ids) -> np.ndarray:
    """Each question's map over the regions: the attention (N, T, R) averaged over its real
    (non-padding) words, (N, R)."""
    real = (np.asarray(ids) != 0)[..., None]
    return (attention * real).sum(1) / real.sum(1).clip(min=1)


def train_on_regions(config: Config, data: VQAArrays, regions: torch.Tensor, *, epochs: int,
                     images_per_batch: int, seed: int, lr: float = 3e-3, evaluate=None,
                     verbose: bool = True):
    """Stage 2 from a fresh seed: a new :class:`AttentionVQA` whose question encoder, fusion and
    classifier learn on ``regions`` cached from a frozen tower (its own image tower is never
    used). Returns ``(model, history)``; ``evaluate(model)`` runs after each epoch."""
    torch.manual_seed(seed)
    model = build(config)
    model.image.requires_grad_(False)
    batches = ImageBatches(data, images_per_batch=images_per_batch, seed=seed, regions=regions)
    history = fit(model, batches, loss_fn, epochs=epochs, lr=lr, evaluate=evaluate, verbose=verbose)
    return model, history

