"""The book's vocabulary for models of several modalities, stated once, as code.

Each term has one meaning throughout the book, decided only by what goes into a model, what
comes out, and where the modalities meet:

- **modality**: a kind of signal with its own structure: ``"image"`` (a grid of pixels),
  ``"text"`` (a sequence of tokens), ``"audio"`` (a sequence of samples or frames),
  ``"video"``. A class label (one of a fixed set of classes) is a target, not a modality, even
  when the classes have names: otherwise CIFAR-10 classification, images in and "cat" out,
  would be cross-modal. Text comes *out* when a model writes or retrieves words or sentences
  (a transcript, a caption, tags read off matching sentences).
- **unimodal**: one modality in all, inputs and outputs together.
- **multimodal**: two or more modalities, inputs and outputs together.
- **cross-modal**: multimodal, and an output (generated, or retrieved from a collection) is in
  a modality that is not among the inputs: information crosses from one modality to another.
  Every cross-modal model is multimodal; a model that fuses several inputs into an answer in a
  modality it was given (or into a label) is multimodal but not cross-modal.
- **fusion**: several input modalities combined into one prediction. *Where* is named by
  what is combined:

  - **early** fusion combines the *inputs* (raw values or fixed, hand-made features) before
    one model learns anything from them;
  - **intermediate** fusion combines *representations*: the outputs of learned,
    modality-specific encoders, followed by learned joint layers (concatenation of encoder
    features, cross-attention, stacking feature maps);
  - **late** fusion combines *predictions*: each modality has a complete model of its own,
    and only their outputs (probabilities, scores) are merged.

  A model with a single input modality fuses nothing, whatever its layers. A two-tower
  (dual-encoder) model used for retrieval reads a query in one modality and returns items of
  another: cross-modal, with no fusion; its towers meet only in a similarity score.

:func:`kind` and :func:`fusion` apply these rules; :data:`BOOK` lists the book's models with
the words their chapters use for them, so a test can check that the two agree.
"""

from __future__ import annotations

import dataclasses

MODALITIES = ("image", "text", "audio", "video")
LABEL = "label"
KINDS = ("unimodal", "multimodal", "cross-modal")
COMBINES = {"inputs": "early", "representations": "intermediate", "predictions": "late"}


def _modalities(names, what: str, allow_label: bool) -> frozenset:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a collection of names such as ('image', 'audio'), got the string {names!r}")
    names = frozenset(names)
    allowed = set(MODALITIES) | ({LABEL} if allow_label else set())
    unknown = names - allowed
    if unknown:
        hint = " (a label is a target: it can only be an output)" if LABEL in unknown else ""
        raise ValueError(f"{what}: unknown {sorted(unknown)}; use {sorted(allowed)}{hint}")
    if not names:
        raise ValueError(f"{what} is empty: a model reads at least one modality and outputs something")
    return names


def kind(inputs, outputs) -> str:
    """'unimodal', 'multimodal' or 'cross-modal', from the modalities in and out.

    ``inputs``: the modalities the model reads, e.g. ``{"image", "text"}``; ``outputs``: the
    modalities it produces or retrieves, or ``{"label"}`` for a class from a fixed set.
    """
    ins = _modalities(inputs, "inputs", allow_label=False)
    outs = _modalities(outputs, "outputs", allow_label=True) - {LABEL}
    if outs - ins:
        return "cross-modal"
    return "multimodal" if len(ins | outs) > 1 else "unimodal"


def fusion(inputs, combines: str | None) -> str | None:
    """'early', 'intermediate', 'late', or None for a model with one input modality.

    ``combines``: what the model joins its input modalities at: ``"inputs"`` (raw values or
    fixed features), ``"representations"`` (outputs of learned per-modality encoders) or
    ``"predictions"`` (each modality's own prediction); None when nothing is joined.
    """
    ins = _modalities(inputs, "inputs", allow_label=False)
    if len(ins) == 1:
        if combines is not None:
            raise ValueError(f"a model with one input modality ({sorted(ins)[0]}) fuses nothing; "
                             f"pass combines=None, not {combines!r}")
        return None
    if combines not in COMBINES:
        raise ValueError(f"a model reading {sorted(ins)} combines them somewhere: pass combines as one of "
                         f"{sorted(COMBINES)}, got {combines!r}")
    return COMBINES[combines]


@dataclasses.dataclass(frozen=True)
class Model:
    """A model described by what goes in, what comes out and what it combines its inputs at."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    combines: str | None = None

    @property
    def kind(self) -> str:
        return kind(self.inputs, self.outputs)

    @property
    def fusion(self) -> str | None:
        return fusion(self.inputs, self.combines)

    def describe(self) -> str:
        """For example 'multimodal, intermediate fusion' or 'cross-modal, no fusion'."""
        return f"{self.kind}, {self.fusion or 'no'} fusion"


@dataclasses.dataclass(frozen=True)
class Claim:
    """What a chapter says about one of its models: its own words and the term they use."""

    chapter: str   # notebook path from the repository root, without ".ipynb"
    model: Model
    says: str      # the chapter's words, verbatim up to line breaks
    term: str      # the term those words apply: one of KINDS or of COMBINES' values

    def __post_init__(self):
        if self.term not in KINDS + tuple(COMBINES.values()):
            raise ValueError(f"term must be a kind {KINDS} or a fusion {tuple(COMBINES.values())}, got {self.term!r}")

    @property
    def holds(self) -> bool:
        """Whether the definition gives the model the term the chapter uses."""
        return self.term in (self.model.kind, self.model.fusion)


def _m(name, inputs, outputs, combines=None):
    return Model(name, tuple(inputs), tuple(outputs), combines)


# The book's models, each with the sentence of its chapter that names its kind or its fusion.
BOOK = (
    Claim("chapters/part1/01_background", _m("image + audio features, one logistic regression",
          ("image", "audio"), ("label",), "inputs"), "both feature vectors concatenated (early fusion)", "early"),
    Claim("chapters/part1/01_background", _m("product of the two models' probabilities",
          ("image", "audio"), ("label",), "predictions"), "Late fusion needs no training of its own", "late"),
    Claim("chapters/part1/01_background", _m("the article's CIFAR-10 network", ("image",), ("label",)),
          "one input, one modality: it fuses nothing", "unimodal"),
    Claim("chapters/part1/08_faq", _m("the article's CIFAR-10 network", ("image",), ("label",)),
          "The article's own code reads one modality", "unimodal"),
    Claim("chapters/part1/06_multimodal", _m("concat: encoder features concatenated, one hidden layer",
          ("image", "audio"), ("label",), "representations"), "It is **intermediate fusion**", "intermediate"),
    Claim("chapters/part1/06_multimodal", _m("deconv: audio drawn onto the image's feature grid",
          ("image", "audio"), ("label",), "representations"), "This is intermediate fusion too", "intermediate"),
    Claim("chapters/part1/06_multimodal", _m("late: log-probabilities added", ("image", "audio"), ("label",),
          "predictions"), "**late fusion**: no new model", "late"),
    Claim("chapters/part2/02_concepts", _m("concatenation of question and picture features",
          ("image", "text"), ("label",), "inputs"), "**concatenation** (early fusion)", "early"),
    Claim("chapters/part2/02_concepts", _m("bilinear: outer product of the same features",
          ("image", "text"), ("label",), "inputs"), "bilinear fusion is early fusion too", "early"),
    Claim("chapters/part2/02_concepts", _m("visual question answering", ("image", "text"), ("label",),
          "representations"), "visual question answering is multimodal", "multimodal"),
    Claim("chapters/part2/08_faq", _m("visual question answering", ("image", "text"), ("label",),
          "representations"), "Visual question answering comes out as multimodal", "multimodal"),
    Claim("chapters/part2/04_image_text", _m("two towers: a caption retrieves pictures", ("text",), ("image",)),
          "图像-文本跨模态学习", "cross-modal"),
    Claim("chapters/part2/05b_image_generation", _m("a caption drawn by a decoder", ("text",), ("image",)),
          "turn a text description into a picture", "cross-modal"),
    Claim("chapters/part2/05d_speech_recognition", _m("PocketSphinx: audio to words", ("audio",), ("text",)),
          "carries data from the audio modality (模态) into the text modality", "cross-modal"),
    Claim("chapters/part2/05e_speech_synthesis", _m("eSpeak NG: text to speech", ("text",), ("audio",)),
          "converts (相互转换) data from the text modality into the audio modality", "cross-modal"),
    Claim("chapters/part2/05f_voice_commands", _m("a spoken digit retrieves images", ("audio",), ("image",)),
          "among the applications of audio-text cross-modal learning", "cross-modal"),
)
