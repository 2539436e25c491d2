"""Image-text pairs made from easy-VQA's shape pictures, for Part II's cross-modal models.

Every easy-VQA picture holds one shape in one of 8 colours and 3 forms: 24 colour-shape
classes. The package's questions pin both down for only about 80% of the pictures, so this
module reads all four facts from the pixels themselves and checks them against every answer:

* colour: the palette colour (easy-VQA draws in 8 exact CSS colours) covering most pixels;
* shape: how much of its bounding box the shape fills (rectangle ~1, circle ~pi/4,
  triangle ~1/2);
* size: the longest side of the bounding box (small / medium / large);
* position: the centre of mass in a 3x3 grid (``top left`` ... ``bottom right``).

A caption such as ``"a small red circle at the top left"`` is then specific to its picture.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from mmlearn.data.easy_vqa import VQASplit, load_easy_vqa
from mmlearn.inputs import check_array

PALETTE = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0),
           "gray": (128, 128, 128), "teal": (0, 128, 128), "brown": (165, 42, 42),
           "yellow": (255, 255, 0)}
COLORS = tuple(PALETTE)
SHAPES = ("circle", "rectangle", "triangle")
CLASSES = tuple(f"{c} {s}" for c in COLORS for s in SHAPES)  # 24 "colour shape" names
SHAPE_SIZES = ("small", "medium", "large")
SIZE_EDGES_PX = (16, 25)          # longest bounding-box side: < 16 small, < 25 medium, else large
FILL_EDGES = (0.69, 0.93)         # bounding-box fill: < 0.69 triangle, < 0.93 circle, else rectangle
ROWS, COLS = ("top", "middle", "bottom"), ("left", "center", "right")
PROMPTS = ("a {color} {shape}", "a picture of a {color} {shape}", "a {shape} coloured {color}")


def class_index(color: int | np.ndarray, shape: int | np.ndarray):
    """Index into :data:`CLASSES` of colour ``color`` and shape ``shape`` (indices)."""
    return np.asarray(color) * len(SHAPES) + np.asarray(shape)


@dataclasses.dataclass(frozen=True)
class ShapeFacts:
    """What the pixels say about each picture; all int64 (N,) except ``box_side``/``centre``."""

    color: np.ndarray      # index into COLORS
    shape: np.ndarray      # index into SHAPES
    size: np.ndarray       # index into SHAPE_SIZES
    row: np.ndarray        # 0 top, 1 middle, 2 bottom
    col: np.ndarray        # 0 left, 1 center, 2 right
    box_side: np.ndarray   # longest bounding-box side, px
    fill: np.ndarray       # share of the bounding box the shape covers, float
    centre: np.ndarray     # (N, 2) centre of mass (row, col) in px, float

    @property
    def label(self) -> np.ndarray:
        return class_index(self.color, self.shape)


def read_facts(images, chunk: int = 500) -> ShapeFacts:
    """Colour, shape, size and position of the one shape in each uint8 (N, H, W, 3) picture."""
    images = check_array(np.asarray(images), what="easy-VQA pictures")
    palette = np.array(list(PALETTE.values()), dtype=np.int32)            # (8, 3)
    parts = []
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].astype(np.int32)                   # (n, H, W, 3)
        exact = (x[..., None, :] == palette).all(-1).sum(axis=(1, 2))     # (n, H, W, 8) -> (n, 8)
        color = exact.argmax(1)
        background = x[:, 0, 0]                                            # corners are background
        d_fg = ((x - palette[color][:, None, None]) ** 2).sum(-1)
        d_bg = ((x - background[:, None, None]) ** 2).sum(-1)
        parts.append((color, d_fg < d_bg))                                 # mask (n, H, W)
    color = np.concatenate([c for c, _ in parts])
    mask = np.concatenate([m for _, m in parts])
    n, h, w = mask.shape
    if not mask.any(axis=(1, 2)).all():
        raise ValueError("some pictures show no shape: expected easy-VQA pictures")
    rows, cols = mask.any(2), mask.any(1)                                  # (N, H), (N, W)
    r0, r1 = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    c0, c1 = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    side = np.maximum(r1 - r0, c1 - c0) + 1
    area = mask.sum(axis=(1, 2))
    fill = area / ((r1 - r0 + 1) * (c1 - c0 + 1))
    shape = np.digitize(fill, FILL_EDGES)                                  # 0 triangle, 1 circle, 2 rect
    shape = np.array([2, 0, 1])[shape]                                     # -> SHAPES order
    centre = np.stack([(mask * np.arange(h)[:, None]).sum((1, 2)) / area,
                       (mask * np.arange(w)[None, :]).sum((1, 2)) / area], axis=1)
    return ShapeFacts(color=color.astype(np.int64), shape=shape.astype(np.int64),
                      size=np.digitize(side, SIZE_EDGES_PX).astype(np.int64),
                      row=np.minimum(centre[:, 0] * 3 // h, 2).astype(np.int64),
                      col=np.minimum(centre[:, 1] * 3 // w, 2).astype(np.int64),
                      box_side=side.astype(np.int64), fill=fill, centre=centre)


def downsample(images, factor: int = 2) -> np.ndarray:
    """uint8 (N, H, W, 3) pictures shrunk ``factor`` times by averaging factor x factor blocks
    (area resampling keeps a 7 px shape visible as a blurred 3-4 px one)."""
    images = check_array(np.asarray(images), what="easy-VQA pictures")
    n, h, w, c = images.shape
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor must be a positive divisor of the picture size {h}x{w}, got {factor}")
    blocks = images.reshape(n, h // factor, factor, w // factor, factor, c).astype(np.float32)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def position_name(row: int, col: int) -> str:
    if (row, col) == (1, 1):
        return "center"
    if row == 1:
        return COLS[col]
    if col == 1:
        return ROWS[row]
    return f"{ROWS[row]} {COLS[col]}"


TAGS = {"color": COLORS, "shape": SHAPES, "size": SHAPE_SIZES, "row": ROWS, "col": COLS}  # fact -> words


SYNONYMS = {"red": "crimson", "green": "lime", "blue": "azure", "black": "jet-black",
            "gray": "grey", "teal": "turquoise", "brown": "chestnut", "yellow": "golden",
            "circle": "round disc", "rectangle": "box", "triangle": "three-sided figure"}
"""Words and phrases that no caption uses, one per colour and shape word, for prompts in new words."""


def caption_text(color: int, shape: int, size: int, row: int, col: int,
                 words: dict[str, str] | None = None) -> str:
    """The caption template filled in from fact indices, e.g. ``"a small red circle at the top left"``.
    ``words`` replaces colour and shape words (``{"red": "crimson"}``); by default none is."""
    where = position_name(row, col)
    preposition = "in the" if where == "center" else "at the"
    words = words or {}
    c, s = COLORS[color], SHAPES[shape]
    return f"a {SHAPE_SIZES[size]} {words.get(c, c)} {words.get(s, s)} {preposition} {where}"


def caption(facts: ShapeFacts, i: int) -> str:
    """The caption of picture ``i``."""
    return caption_text(*(int(getattr(facts, fact)[i]) for fact in TAGS))


TAG_NAMES = tuple(word for words in TAGS.values() for word in words)  # the 20 tag words, fact by fact


def tag_matrix(facts) -> np.ndarray:
    """bool (N, 20) matrix: which of :data:`TAG_NAMES` hold for each picture, from a
    :class:`ShapeFacts` or a dict of fact indices such as :func:`every_caption`'s."""
    get = (lambda k: facts[k]) if isinstance(facts, dict) else (lambda k: getattr(facts, k))
    columns = [np.asarray(get(fact))[:, None] == np.arange(len(words)) for fact, words in TAGS.items()]
    return np.concatenate(columns, axis=1)


def every_caption(words: dict[str, str] | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """All 648 captions the template can write (8 colours x 3 shapes x 3 sizes x 9 positions),
    with, per fact of :data:`TAGS`, the int64 (648,) index of the word each caption states.
    ``words`` rewrites colour and shape words as in :func:`caption_text` (e.g. :data:`SYNONYMS`)."""
    grid = np.stack(np.meshgrid(*(np.arange(len(v)) for v in TAGS.values()), indexing="ij"), -1)
    grid = grid.reshape(-1, len(TAGS))                                       # (648, 5)
    return ([caption_text(*map(int, row), words=words) for row in grid],
            dict(zip(TAGS, grid.T.astype(np.int64))))


def prompts(template: str = PROMPTS[0], words: dict[str, str] | None = None) -> list[str]:
    """One text prompt per class of :data:`CLASSES`, for classification by text prompts;
    ``words`` rewrites colour and shape words (e.g. :data:`SYNONYMS`)."""
    if "{color}" not in template or "{shape}" not in template:
        raise ValueError(f"expected a template with {{color}} and {{shape}}, got {template!r}")
    words = words or {}
    return [template.format(color=words.get(c, c), shape=words.get(s, s)) for c in COLORS for s in SHAPES]


def unseen_combinations(n: int = 6, seed: int = 0) -> np.ndarray:
    """Indices into :data:`CLASSES` of ``n`` colour-shape combinations to hold out of training.

    Each held-out combination has its own colour and the shapes take turns, so every colour
    and every shape keeps combinations that are seen in training: an unseen "teal triangle"
    is made of a colour and a shape the model has met, only never together.
    """
    if not 1 <= n <= len(COLORS):
        raise ValueError(f"n must be between 1 and {len(COLORS)} (one combination per colour), got {n}")
    rng = np.random.default_rng(seed)
    colors = rng.permutation(len(COLORS))[:n]
    shapes_ = (rng.integers(len(SHAPES)) + np.arange(n)) % len(SHAPES)
    return np.sort(class_index(colors, shapes_))


def qa_constraints(split: VQASplit) -> tuple[list[set], list[set]]:
    """Per picture, the colours and shapes still possible after reading all its Q&A."""
    n = len(split.images)
    colors, shapes = [set(COLORS) for _ in range(n)], [set(SHAPES) for _ in range(n)]
    for question, answer, i in zip(split.questions, split.answers, split.image_index):
        if answer in SHAPES:
            shapes[i] &= {answer}
        elif answer in COLORS:
            colors[i] &= {answer}
        else:  # yes/no about one colour or one shape; "not"/"no" flips the question
            words = re.findall(r"[a-z]+", question)
            present = (answer == "yes") != ("not" in words or "no" in words)
            for vocab, possible in ((COLORS, colors[i]), (SHAPES, shapes[i])):
                named = [w for w in words if w in vocab]
                if named:
                    if present:
                        possible &= {named[0]}
                    else:
                        possible.discard(named[0])
    return colors, shapes


def check_against_qa(split: VQASplit, facts: ShapeFacts) -> dict[str, int]:
    """How many pictures the Q&A pins down, and how many of the pixel facts contradict it."""
    colors, shapes = qa_constraints(split)
    return {"pictures": len(colors),
            "qa_pins_color": sum(len(c) == 1 for c in colors),
            "qa_pins_shape": sum(len(s) == 1 for s in shapes),
            "color_contradictions": sum(COLORS[k] not in c for k, c in zip(facts.color, colors)),
            "shape_contradictions": sum(SHAPES[k] not in s for k, s in zip(facts.shape, shapes))}


@dataclasses.dataclass(frozen=True)
class ShapePairs:
    """Pictures with their captions.

    ``images`` uint8 (N, 64, 64, 3); ``captions`` list of N str; ``labels`` int64 (N,) index
    into :data:`CLASSES`; ``caption_ids`` int64 (N,) index into ``vocabulary``, the sorted
    distinct captions of train and test together (equal ids = equal captions).
    """

    images: np.ndarray
    captions: list
    labels: np.ndarray
    caption_ids: np.ndarray
    vocabulary: tuple
    facts: ShapeFacts

    def subset(self, n: int | None) -> "ShapePairs":
        """The first ``n`` pairs (``None`` keeps all); easy-VQA's pictures are in random order."""
        return self.take(slice(None, n))

    def take(self, index) -> "ShapePairs":
        """The pairs at ``index``: a slice, int indices or a bool mask over the pairs."""
        if isinstance(index, slice):
            rows = np.arange(len(self.labels))[index]
        else:
            index = np.asarray(index)
            if index.dtype == bool and index.shape != self.labels.shape:
                raise ValueError(f"expected a bool mask of shape {self.labels.shape}, got {index.shape}")
            rows = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        f = self.facts
        facts = ShapeFacts(*(getattr(f, k.name)[rows] for k in dataclasses.fields(f)))
        return dataclasses.replace(self, images=self.images[rows], captions=[self.captions[i] for i in rows],
                                   labels=self.labels[rows], caption_ids=self.caption_ids[rows],
                                   facts=facts)


def load_shape_pairs() -> tuple[ShapePairs, ShapePairs]:
    """(train, test) image-caption pairs: easy-VQA's 4,000 / 1,000 pictures, captioned."""
    vqa = load_easy_vqa()
    facts = [read_facts(split.images) for split in (vqa.train, vqa.test)]
    captions = [[caption(f, i) for i in range(len(f.color))] for f in facts]
    vocabulary = tuple(sorted(set(captions[0]) | set(captions[1])))
    index = {c: i for i, c in enumerate(vocabulary)}
    return tuple(ShapePairs(split.images, caps, f.label, np.array([index[c] for c in caps]),
                            vocabulary, f)
                 for split, f, caps in zip((vqa.train, vqa.test), facts, captions))
