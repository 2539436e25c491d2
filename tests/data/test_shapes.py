"""Tests of mmlearn.data.shapes: facts read from pixels, captions, prompts, bad input."""

import dataclasses

import numpy as np
import pytest

import mmlearn as mm
from mmlearn.data import shapes


def picture(kind: str, color: str, top: int, left: int, side: int) -> np.ndarray:
    """A 64x64 picture on a light background with one shape drawn in a palette colour."""
    x = np.full((64, 64, 3), (240, 235, 230), dtype=np.uint8)
    rr, cc = np.mgrid[:side, :side]
    if kind == "rectangle":
        inside = np.ones((side, side), bool)
    elif kind == "circle":
        r = (side - 1) / 2
        inside = (rr - r) ** 2 + (cc - r) ** 2 <= r ** 2
    else:  # an upright triangle: apex at the top middle
        inside = np.abs(cc - (side - 1) / 2) <= rr / 2
    x[top:top + side, left:left + side][inside] = shapes.PALETTE[color]
    return x


def test_class_list_has_24_colour_shape_pairs():
    assert len(shapes.COLORS) == 8 and len(shapes.SHAPES) == 3 and len(shapes.CLASSES) == 24
    assert shapes.CLASSES[int(shapes.class_index(2, 1))] == "blue rectangle"


def test_read_facts_from_drawn_pictures():
    images = np.stack([picture("rectangle", "teal", 2, 2, 12),
                       picture("circle", "yellow", 20, 20, 22),
                       picture("triangle", "brown", 30, 34, 30)])
    f = shapes.read_facts(images)
    assert [shapes.SHAPES[s] for s in f.shape] == ["rectangle", "circle", "triangle"]
    assert [shapes.COLORS[c] for c in f.color] == ["teal", "yellow", "brown"]
    assert [shapes.SHAPE_SIZES[s] for s in f.size] == ["small", "medium", "large"]
    assert [shapes.caption(f, i) for i in range(3)] == [
        "a small teal rectangle at the top left", "a medium yellow circle in the center",
        "a large brown triangle at the bottom right"]


def test_facts_agree_with_easy_vqa_answers():
    test = mm.data.load_easy_vqa().test
    keep = test.image_index < 100
    split = dataclasses.replace(test, images=test.images[:100],
                                questions=[q for q, k in zip(test.questions, keep) if k],
                                answers=[a for a, k in zip(test.answers, keep) if k],
                                image_index=test.image_index[keep])
    report = shapes.check_against_qa(split, shapes.read_facts(split.images))
    assert report["qa_pins_color"] > 50 and report["qa_pins_shape"] > 50
    assert report["color_contradictions"] == 0 and report["shape_contradictions"] == 0


def test_prompts_cover_every_class_in_order():
    p = shapes.prompts("a photo of a {color} {shape}")
    assert len(p) == 24 and p[int(shapes.class_index(0, 2))] == "a photo of a red triangle"
    with pytest.raises(ValueError, match="{color}"):
        shapes.prompts("a photo of a {shape}")


def test_wrong_channel_order_is_rejected():
    with pytest.raises(ValueError, match="transpose"):
        shapes.read_facts(np.zeros((2, 3, 64, 64), np.uint8))


def test_shape_pairs_subset_keeps_rows_aligned():
    train, _ = shapes.load_shape_pairs()
    small = train.subset(10)
    assert small.images.shape == (10, 64, 64, 3) and len(small.captions) == 10
    assert (small.facts.label == small.labels).all()
    assert all(small.vocabulary[i] == c for i, c in zip(small.caption_ids, small.captions))


def test_downsample_averages_blocks_and_checks_factor():
    x = np.zeros((1, 4, 4, 3), np.uint8)
    x[0, :2, :2] = 200
    small = shapes.downsample(x, 2)
    assert small.shape == (1, 2, 2, 3) and small[0, 0, 0, 0] == 200 and small[0, 1, 1, 0] == 0
    with pytest.raises(ValueError, match="divisor"):
        shapes.downsample(x, 3)


def test_every_caption_and_tag_matrix():
    captions, facts = shapes.every_caption()
    assert len(captions) == len(set(captions)) == 8 * 3 * 3 * 9
    train, _ = shapes.load_shape_pairs()
    assert set(train.vocabulary) <= set(captions)          # the template writes every real caption
    tags = shapes.tag_matrix(facts)
    assert tags.shape == (648, 20) and (tags.sum(1) == 5).all()  # one word per fact
    i = captions.index("a large teal triangle at the bottom")
    assert [shapes.TAG_NAMES[t] for t in np.flatnonzero(tags[i])] == ["teal", "triangle", "large",
                                                                      "bottom", "center"]
    assert np.array_equal(shapes.tag_matrix(train.facts)[:, :8].argmax(1), train.facts.color)


@pytest.mark.parametrize("seed", range(5))
def test_unseen_combinations_leave_every_colour_and_shape_seen(seed):
    unseen = shapes.unseen_combinations(6, seed)
    colors, kinds = unseen // len(shapes.SHAPES), unseen % len(shapes.SHAPES)
    assert len(set(unseen)) == 6 and len(set(colors)) == 6          # one combination per colour
    assert np.bincount(kinds, minlength=3).tolist() == [2, 2, 2]    # the shapes take turns
    seen = np.setdiff1d(np.arange(24), unseen)
    assert set(seen // 3) == set(range(8)) and set(seen % 3) == set(range(3))
    assert not np.array_equal(unseen, shapes.unseen_combinations(6, seed + 1))
    with pytest.raises(ValueError, match="one combination per colour"):
        shapes.unseen_combinations(9)


def test_take_selects_aligned_rows_by_mask_or_index():
    train, _ = shapes.load_shape_pairs()
    mask = train.labels == 0
    part = train.take(mask)
    assert len(part.captions) == mask.sum() and (part.labels == 0).all() and (part.facts.label == 0).all()
    assert part.captions == [c for c, m in zip(train.captions, mask) if m]
    assert train.take(np.array([3, 1])).captions == [train.captions[3], train.captions[1]]
    with pytest.raises(ValueError, match="bool mask of shape"):
        train.take(mask[:5])


def test_synonym_prompts_use_no_caption_word():
    captions, _ = shapes.every_caption(shapes.SYNONYMS)
    assert captions[0].startswith("a small crimson round disc")
    train, test = shapes.load_shape_pairs()
    caption_words = {w for c in train.vocabulary + test.vocabulary for w in c.split()}
    new_words = {w for phrase in shapes.SYNONYMS.values() for w in phrase.split()}
    assert not new_words & caption_words
    assert shapes.prompts("a {color} {shape}", shapes.SYNONYMS)[0] == "a crimson round disc"
