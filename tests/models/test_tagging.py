"""Tests of mmlearn.models.tagging: the small image tower, the tag classifier and its training."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn.data import shapes
from mmlearn.models import tagging


@pytest.fixture(scope="module")
def pictures():
    train, _ = shapes.load_shape_pairs()
    return train.subset(64)


def test_shape_tower_embeds_uint8_pictures_and_checks_them(pictures):
    tower = tagging.ShapeTower(embed_dim=16)
    out = tower(torch.as_tensor(pictures.images[:5]))
    assert out.shape == (5, 16)
    with pytest.raises(ValueError, match="channels-last"):
        tower(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))


def test_classifier_learns_tags_with_binary_cross_entropy(pictures):
    torch.manual_seed(0)
    model = tagging.TagClassifier(tagging.ShapeTower(embed_dim=16), 16, len(shapes.TAG_NAMES))
    tags = shapes.tag_matrix(pictures.facts)
    history = tagging.fit_tagger(model, pictures.images, tags, epochs=10, batch_size=16, verbose=False)
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    p = model.probabilities(pictures.images)
    assert p.shape == tags.shape
    assert np.nanmean(mm.metrics.average_precision(p, tags)) > tags.mean() + 0.2   # well above chance
    with pytest.raises(ValueError, match="one target row per picture"):
        tagging.fit_tagger(model, pictures.images, tags[:-1], epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="at least 1"):
        tagging.TagClassifier(tagging.ShapeTower(), 128, 0)


def test_dual_encoder_trains_on_captions_and_yields_tag_probabilities(pictures):
    torch.manual_seed(0)
    model = tagging.build(tagging.Config("joint", embed_dim=16), verbose=False)
    features = model.text.pooled_features(list(pictures.vocabulary))
    history = tagging.fit_tagger(model, pictures.images, pictures.caption_ids, epochs=2, batch_size=16,
                                 caption_features=features, verbose=False)
    assert np.isfinite(history["loss"]).all()
    every, facts = shapes.every_caption()
    tags = shapes.tag_matrix(facts)
    p = tagging.joint_tag_probabilities(model, pictures.images[:4], model.text.pooled_features(every), tags)
    colours = p[:, :len(shapes.COLORS)]
    assert p.shape == (4, len(shapes.TAG_NAMES)) and np.allclose(colours.sum(1), 1, atol=1e-4)
    with pytest.raises(ValueError, match="caption_features"):
        tagging.fit_tagger(model, pictures.images, pictures.caption_ids, epochs=1, batch_size=16)


def test_build_makes_the_chapters_two_taggers_on_one_tower():
    torch.manual_seed(0)
    classifier = tagging.build(tagging.CLASSIFIER)
    assert isinstance(classifier, tagging.TagClassifier) and isinstance(classifier.image, tagging.ShapeTower)
    assert classifier.out.out_features == len(shapes.TAG_NAMES) == tagging.CLASSIFIER.n_tags
    joint = tagging.build(tagging.JOINT, verbose=False)
    assert isinstance(joint.image, tagging.ShapeTower)
    tower_size = sum(p.numel() for p in classifier.image.parameters())
    assert tower_size == sum(p.numel() for p in joint.image.parameters())
    with pytest.raises(ValueError, match="unknown kind"):
        tagging.Config("ranking")
