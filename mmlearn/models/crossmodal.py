"""Cross-modal models in PyTorch: two towers, one joint embedding space, and attention.

Read top to bottom, the module follows the figure of a CLIP-style model, built from the shared
blocks of :mod:`mmlearn.blocks` (``ProjectionHead``, ``LogitScale``, ``CrossAttention`` and the
contrastive loss):

1. inputs: :func:`image_tensor` turns uint8 pictures into the tensor the image tower expects;
2. towers: :class:`ImageEncoder` (torchvision's ResNet18 whose 1,000-way classifier is replaced
   by a projection into the joint space) and :class:`TextEncoder` (a BERT-family model from
   ``transformers`` with attention-mask-aware mean pooling and a projection);
3. networks: :class:`DualEncoder` (both towers + temperature) and :class:`FusionNetwork`
   (image regions and text tokens attend to each other, then a classifier);
4. the builder: :class:`Config`, :func:`build` and the chapters' :data:`IMAGE_TEXT`;
5. training with a frozen text tower: :func:`cached_caption_loss` and :func:`fit_on_captions`;
6. tags from the joint space: :func:`tag_probabilities`.

Everything runs offline: ImageNet weights and ``bert-base-uncased`` are used when they are in
torch's or Hugging Face's cache, or downloaded when ``MMLEARN_ONLINE=1``
(:mod:`mmlearn.data.pretrained` fetches them); otherwise one line says so and a randomly
initialised ResNet18 / the bundled all-MiniLM-L6-v2 take their place.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmlearn import training
from mmlearn.blocks import (CrossAttention, LogitScale, ProjectionHead, attention, contrastive_loss,
                            similarity)
from mmlearn.data.pretrained import imagenet_resnet18_state, text_backbone
from mmlearn.inputs import check_array, to_float

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STEMS = ("imagenet", "small")


# --- 1. inputs -------------------------------------------------------------------------------

_RESIZE = "resize them to {size}x{size} or build the encoder with image_size={side}"


def image_tensor(images, image_size: int = 64) -> torch.Tensor:
    """uint8 (N, S, S, 3) RGB pictures -> float32 (N, 3, S, S), ImageNet-normalised.

    Float input must already be in [0, 1]. The normalisation is the one ImageNet weights were
    trained with, so the same tensor suits a pretrained and a from-scratch tower.
    """
    images = check_array(np.asarray(images), size=image_size, dtypes=("uint8", "float32"),
                         unit_range=True, resize=_RESIZE)
    x = to_float(torch.from_numpy(images))                    # (N, S, S, 3) -> (N, 3, S, S)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


# --- 2. towers -------------------------------------------------------------------------------

class ImageEncoder(nn.Module):
    """ResNet18 -> region features -> projection into the joint space.

    ``stem="imagenet"`` keeps ResNet18's 7x7/2 convolution and max-pool (a 32x smaller feature
    map: 64 px pictures end as 2x2 regions). ``stem="small"`` replaces them by one 3x3/1
    convolution and keeps the max-pool, so a 64 px picture ends as 4x4 regions of 16 px each:
    small shapes survive, and there is a grid to draw attention on. The new 3x3 convolution
    starts from scratch; with ImageNet weights, every later layer keeps them.

    ``forward`` takes (B, 3, S, S) from :func:`image_tensor` and returns the embedding (B, D);
    :meth:`regions` returns the projected region embeddings (B, R, D) whose mean it is.
    """

    def __init__(self, embed_dim: int = 128, image_size: int = 64, stem: str = "small",
                 pretrained: bool | None = None, verbose: bool = True):
        super().__init__()
        import torchvision

        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; expected one of {', '.join(STEMS)}")
        self.image_size, self.stem = image_size, stem
        net = torchvision.models.resnet18()
        state = imagenet_resnet18_state(verbose) if pretrained is not False else None
        if pretrained is True and state is None:
            raise RuntimeError("pretrained=True, but ImageNet ResNet18 weights cannot be had here")
        self.pretrained = state is not None
        if state is not None:
            net.load_state_dict(state)
        if stem == "small":
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.backbone = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                      net.layer1, net.layer2, net.layer3, net.layer4)
        self.feature_dim = net.fc.in_features  # 512; the 1,000-way classifier is dropped
        self.head = ProjectionHead(self.feature_dim, embed_dim)

    def regions(self, images: torch.Tensor) -> torch.Tensor:
        check_array(images, "NCHW", size=self.image_size, dtypes=None, resize=_RESIZE)
        f = self.backbone(images)             # (B, 3, 64, 64) -> (B, 512, 4, 4) with the small stem
        f = f.flatten(2).transpose(1, 2)      # (B, 512, 4, 4) -> (B, 16, 512)
        return self.head(f)                   # (B, 16, 512) -> (B, 16, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.regions(images).mean(dim=1)  # (B, R, D) -> (B, D)


class TextEncoder(nn.Module):
    """A BERT-family transformer -> mean of its token states over real tokens -> projection.

    ``freeze=True`` keeps the transformer's weights fixed (only the head learns), which lets a
    chapter encode each distinct caption once and cache :meth:`pooled` features.
    """

    def __init__(self, embed_dim: int = 128, model: str = "auto", freeze: bool = True,
                 max_length: int = 32, verbose: bool = True):
        super().__init__()
        self.tokenizer, self.backbone, self.model_name = text_backbone(model, verbose)
        self.max_length, self.frozen = max_length, freeze
        self.feature_dim = self.backbone.config.hidden_size
        self.backbone.requires_grad_(not freeze)
        self.head = ProjectionHead(self.feature_dim, embed_dim)

    def tokenize(self, captions) -> dict[str, torch.Tensor]:
        if isinstance(captions, str):
            raise ValueError("expected a list of captions (list[str]), got one str: wrap it in [...]")
        captions = list(captions)
        if not captions or not all(isinstance(c, str) and c.strip() for c in captions):
            raise ValueError("expected a non-empty list of non-empty caption strings, got "
                             f"{captions[:3]!r}{'...' if len(captions) > 3 else ''}")
        tokens = self.tokenizer(captions, padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    def tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token states (B, T, H) of the transformer; padding rows are meaningless."""
        if input_ids.shape != attention_mask.shape:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask "
                             f"{tuple(attention_mask.shape)} must have the same (B, T) shape")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the token states over real tokens only: (B, T, H) -> (B, H)."""
        h = self.tokens(input_ids, attention_mask)
        mask = attention_mask.unsqueeze(-1).to(h.dtype)             # (B, T) -> (B, T, 1)
        return (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(input_ids, attention_mask))    # (B, H) -> (B, D)

    def pooled_features(self, captions, batch_size: int = 128) -> torch.Tensor:
        """Pooled transformer features (N, H) of a list of captions, in eval mode."""
        tokens, was_training = self.tokenize(captions), self.training
        out = training.predict(self, tokens["input_ids"], tokens["attention_mask"], batch_size=batch_size,
                               forward=self.pooled)
        self.train(was_training)
        return out


# --- 3. networks -----------------------------------------------------------------------------

class DualEncoder(nn.Module):
    """Image tower + text tower + temperature: the two-tower (CLIP) model.

    ``forward(images, input_ids, attention_mask)`` returns (image_emb, text_emb, logit_scale);
    feed them to :func:`contrastive_loss`. With a frozen text tower, train on cached
    :meth:`TextEncoder.pooled_features` through ``model.text.head`` instead.
    """

    def __init__(self, image: ImageEncoder, text: TextEncoder, init_temperature: float = 0.07):
        super().__init__()
        self.image, self.text = image, text
        self.logit_scale = LogitScale(init_temperature)

    def forward(self, images, input_ids, attention_mask):
        if images.shape[0] != input_ids.shape[0]:
            raise ValueError(f"expected one caption per image, got {images.shape[0]} images and "
                             f"{input_ids.shape[0]} captions")
        return self.image(images), self.text(input_ids, attention_mask), self.logit_scale()

    @torch.no_grad()
    def attention_map(self, images: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Where in each picture its text looks: attention weights of the text embedding
        (the query) over the picture's region embeddings (the keys), temperature-scaled.
        images (B, 3, S, S), text_emb (B, D) -> (B, h, w) maps that sum to 1."""
        regions = F.normalize(self.image.regions(images), dim=-1)         # (B, R, D)
        query = F.normalize(text_emb, dim=-1).unsqueeze(1)                # (B, 1, D)
        _, weights = attention(query, regions, regions, scale=float(self.logit_scale()))
        side = int(round(math.sqrt(regions.shape[1])))
        return weights.view(len(images), side, side)                      # (B, 1, R) -> (B, h, w)


class FusionNetwork(nn.Module):
    """Image regions and text tokens attend to each other, then an MLP classifies the pair.

    regions (B, R, dim), tokens (B, T, dim), token_mask (B, T) True on real tokens ->
    logits (B, n_outputs) and the two attention maps {"image_to_text": (B, R, T),
    "text_to_image": (B, T, R)}.
    """

    def __init__(self, dim: int, n_outputs: int, num_heads: int = 4, hidden: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        self.image_to_text = CrossAttention(dim, num_heads)  # regions ask the tokens
        self.text_to_image = CrossAttention(dim, num_heads)  # tokens ask the regions
        self.norm_image, self.norm_text = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.classifier = nn.Sequential(nn.Linear(3 * dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, n_outputs))

    def forward(self, regions: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor | None = None):
        if regions.shape[0] != tokens.shape[0]:
            raise ValueError(f"expected the same batch in both modalities, got {regions.shape[0]} "
                             f"images and {tokens.shape[0]} texts")
        token_mask = (torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
                      if token_mask is None else token_mask.bool())
        r_att, w_rt = self.image_to_text(regions, tokens, key_padding_mask=token_mask)
        t_att, w_tr = self.text_to_image(tokens, regions)
        r = self.norm_image(regions + r_att).mean(dim=1)                  # (B, R, dim) -> (B, dim)
        keep = token_mask.unsqueeze(-1).to(tokens.dtype)
        t = (self.norm_text(tokens + t_att) * keep).sum(1) / keep.sum(1)  # (B, T, dim) -> (B, dim)
        logits = self.classifier(torch.cat([r, t, r * t], dim=-1))        # (B, 3 dim) -> (B, n_outputs)
        return logits, {"image_to_text": w_rt, "text_to_image": w_tr}


# --- 4. the builder --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Config:
    embed_dim: int = 128
    image_size: int = 64
    stem: str = "small"
    pretrained_image: bool | None = None  # None: ImageNet weights if they can be had
    text_model: str = "auto"              # "auto": bert-base-uncased if on disk, else MiniLM
    freeze_text: bool = True
    init_temperature: float = 0.07


IMAGE_TEXT = Config(embed_dim=128, image_size=32, stem="small")  # II.4 and II.7, on 32 px pictures
BUNDLED_TEXT = Config(text_model="minilm")  # the scaling appendix: the same text tower on every machine


def build(config: Config, verbose: bool = True) -> DualEncoder:
    """The image-text model of Part II from its configuration; ``verbose``: say in one line
    when ImageNet weights or bert-base-uncased are not to be had."""
    image = ImageEncoder(config.embed_dim, config.image_size, config.stem,
                         config.pretrained_image, verbose=verbose)
    text = TextEncoder(config.embed_dim, config.text_model, config.freeze_text, verbose=verbose)
    return DualEncoder(image, text, config.init_temperature)


# --- 5. training with a frozen text tower ----------------------------------------------------

def cached_caption_loss(caption_features: torch.Tensor):
    """``loss_fn`` for :func:`mmlearn.training.fit` on (images, caption_ids) batches.

    With a frozen text tower each distinct caption is encoded once: ``caption_features``
    (C, H) holds the pooled transformer features of every caption, and ``caption_ids`` index
    its rows. Pictures with word-for-word the same caption share a pair id, so the loss does
    not push them apart as negatives.
    """
    def loss_fn(model: DualEncoder, batch) -> torch.Tensor:
        images, caption_ids = batch
        text_emb = model.text.head(caption_features.to(images.device)[caption_ids])
        return contrastive_loss(model.image(images), text_emb, model.logit_scale(), pair_ids=caption_ids)
    return loss_fn


def fit_on_captions(model: DualEncoder, images: torch.Tensor, caption_ids, caption_features: torch.Tensor,
                    *, epochs: int, batch_size: int, lr: float = 3e-3, evaluate=None,
                    verbose: bool = True) -> dict[str, list[float]]:
    """Train the image tower, both projection heads and the temperature on (picture, caption)
    pairs with AdamW and a one-cycle schedule (:func:`mmlearn.training.one_cycle_adamw`: warm-up,
    then annealing). Returns ``fit``'s history."""
    if model.text.frozen is False:
        raise ValueError("fit_on_captions trains on cached caption features, so the text tower must "
                         "be frozen (TextEncoder(freeze=True)); train a trainable one with training.fit")
    caption_ids = torch.as_tensor(np.asarray(caption_ids), dtype=torch.int64)
    if len(images) != len(caption_ids):
        raise ValueError(f"expected one caption id per picture, got {len(images)} pictures and "
                         f"{len(caption_ids)} caption ids")
    if len(caption_ids) and not 0 <= int(caption_ids.min()) <= int(caption_ids.max()) < len(caption_features):
        raise ValueError(f"caption ids must index the {len(caption_features)} rows of caption_features")
    batches = training.ArrayBatches(images, caption_ids, batch_size=batch_size, drop_last=True)
    if len(batches) == 0:
        raise ValueError(f"batch_size={batch_size} exceeds the {len(images)} training pairs")
    optimizer = training.one_cycle_adamw(model, lr, epochs * len(batches))
    return training.fit(model, batches, cached_caption_loss(caption_features), epochs=epochs,
                        optimizer=optimizer, evaluate=evaluate, verbose=verbose)


# --- 6. tags from the joint space ------------------------------------------------------------

def tag_probabilities(image_emb: torch.Tensor, caption_emb: torch.Tensor, caption_tags,
                      logit_scale: torch.Tensor | float) -> torch.Tensor:
    """P(tag | picture) read off the joint space, for image annotation.

    ``caption_emb`` (C, D) embeds every caption a template can write and ``caption_tags``
    (C, T) says which tags each states (bool). A picture's distribution over captions is
    p(c | x) = softmax_c(logit_scale * cos(x, c)), the same one the contrastive loss trains;
    a tag's probability is the total of the captions that state it,
    p(t | x) = sum_c p(c | x) [c states t]. Returns (N, T); tags that exclude each other
    (the colours, say) sum to at most 1.
    """
    caption_tags = torch.as_tensor(np.asarray(caption_tags))
    if caption_tags.dtype != torch.bool or caption_tags.dim() != 2 or len(caption_tags) != len(caption_emb):
        raise ValueError(f"expected caption_tags as a bool (captions, tags) = ({len(caption_emb)}, T) "
                         f"matrix, got {caption_tags.dtype} {tuple(caption_tags.shape)}")
    p_caption = (logit_scale * similarity(image_emb, caption_emb)).softmax(dim=1)   # (N, C)
    return p_caption @ caption_tags.to(p_caption.dtype)                             # (N, T)


def factorised_class_probabilities(image_emb: torch.Tensor, caption_emb: torch.Tensor,
                                   factors, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """P(class | picture) for classes that combine one word of each factor (colour x shape),
    as the product of the factors' marginals read off the joint space.

    ``factors`` is a list of int arrays (C,), one per factor, saying which word of that factor
    each of the C captions in ``caption_emb`` states (``shapes.every_caption``'s indices). A
    factor's marginal p(word | x) is :func:`tag_probabilities` over that factor's words; the
    class probability is their product, p(c, s | x) = p(c | x) p(s | x), flattened with the
    last factor fastest (the order of ``shapes.CLASSES``). A combination never seen in
    training gets its score from words that were: each factor is judged on its own.
    Returns (N, prod of the factors' sizes).
    """
    factors = [np.asarray(f) for f in factors]
    if not factors or any(f.shape != (len(caption_emb),) or f.dtype.kind not in "iu" for f in factors):
        raise ValueError(f"expected factors as a list of int arrays of shape ({len(caption_emb)},), "
                         "one entry per caption")
    p = None
    for f in factors:
        tags = f[:, None] == np.arange(int(f.max()) + 1)                             # (C, words)
        marginal = tag_probabilities(image_emb, caption_emb, tags, logit_scale)    # (N, words)
        p = marginal if p is None else (p[:, :, None] * marginal[:, None, :]).flatten(1)
    return p


@torch.no_grad()
def retrieval_recall(model: DualEncoder, images: torch.Tensor, caption_features: torch.Tensor,
                     labels, caption_ids, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K of a two-tower model with a frozen, cached text tower on held-out pairs.

    ``images`` (N, 3, S, S) from :func:`image_tensor`; ``caption_features`` (C, H) pooled text
    features whose rows ``caption_ids`` (N,) index; ``labels`` (N,) the class of each pair.
    Keys: ``i2t_R@K`` and ``t2i_R@K`` count a hit when the retrieved caption (picture) shows the
    query's class; ``exact_t2i_R@K`` when the retrieved picture's caption is word for word the
    query caption.
    """
    from mmlearn import metrics

    if not len(images) == len(labels) == len(caption_ids):
        raise ValueError(f"expected one label and one caption id per picture, got {len(images)} "
                         f"pictures, {len(labels)} labels and {len(caption_ids)} caption ids")
    image_emb = training.predict(model.image, images, batch_size=128)
    caption_emb = model.text.head(caption_features[torch.as_tensor(np.asarray(caption_ids))])
    sim = similarity(image_emb, caption_emb)                                 # (pictures, captions)
    out = {}
    for name, s, q in (("i2t", sim, labels), ("t2i", sim.T, labels), ("exact_t2i", sim.T, caption_ids)):
        out.update({f"{name}_R@{k}": v for k, v in metrics.recall_at_k(s, q, q, ks).items()})
    return out
