"""Tests of mmlearn.models.vqa: question arrays, image-grouped batches, the attention-fusion model."""

import numpy as np
import pytest
import torch

import mmlearn as mm
from mmlearn import blocks
from mmlearn.data import VQASplit, shapes
from mmlearn.models import vqa


@pytest.fixture(scope="module")
def small():
    """The first 12 test pictures of easy-VQA with all their questions, as arrays."""
    d = mm.data.load_easy_vqa()
    keep = d.test.image_index < 12
    split = VQASplit(d.test.images[:12], [q for q, k in zip(d.test.questions, keep) if k],
                     [a for a, k in zip(d.test.answers, keep) if k], d.test.image_index[keep])
    vocab = vqa.Vocabulary.build(d.train.questions)
    return vqa.to_arrays(split, vocab, d.answer_vocab, length=10), vocab, d.answer_vocab


def test_tokenize_and_question_types():
    assert vqa.tokenize("Is there NOT a red shape?") == ["is", "there", "not", "a", "red", "shape"]
    assert [vqa.question_type(a) for a in ("teal", "triangle", "no")] == ["colour", "shape", "yes/no"]
    with pytest.raises(ValueError, match="expected one of"):
        vqa.question_type("purple")


def test_the_chapters_configuration_fits_easy_vqa(small):
    _, vocab, answers = small
    assert (vqa.EASY_VQA.vocab_size, vqa.EASY_VQA.n_answers) == (len(vocab), len(answers))


def test_vocabulary_pads_and_marks_unknown_words():
    vocab = vqa.Vocabulary.build(["what colour is it?", "is it red?"])
    ids = vocab.encode(["is it blue?", "what colour is it?"])
    assert ids.shape == (2, 4) and ids.dtype == np.int64
    assert ids[0, 2] == 1 and ids[0, 3] == 0          # "blue" is unknown, then padding
    assert vocab.words[ids[1, 0]] == "what"
    with pytest.raises(ValueError, match="empty"):
        vocab.encode([])


def test_arrays_types_and_images_checked(small):
    data, _, answers = small
    assert data.images.shape == (12, 64, 64, 3) and data.question_ids.shape[1] == 10
    types = [vqa.question_type(answers[a]) for a in data.answer]
    assert [vqa.QUESTION_TYPES[t] for t in data.qtype] == types
    with pytest.raises(ValueError, match=r"transpose with x.transpose\(0, 2, 3, 1\)"):
        blocks.check_region_images(np.zeros((2, 3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        blocks.check_region_images(np.zeros((2, 64, 64, 3), np.float32))


def test_image_batches_hold_every_question_once_with_its_image(small):
    data, _, _ = small
    batches = vqa.ImageBatches(data, images_per_batch=5, shuffle=True, seed=1)
    seen = []
    for image_rows, q, owner in batches.groups():
        assert len(image_rows) <= 5
        assert np.array_equal(data.image_index[q], image_rows[owner])
        seen.append(q)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(data.answer)))
    images, owner, ids, answer = next(iter(batches))
    assert images.dtype == torch.uint8 and len(owner) == len(ids) == len(answer)


def test_model_shapes_attention_and_gradients(small):
    data, vocab, answers = small
    torch.manual_seed(0)
    model = vqa.build(vqa.Config(vocab_size=len(vocab), n_answers=len(answers)))
    images, owner, ids, answer = next(iter(vqa.ImageBatches(data, 4, shuffle=False)))
    logits, weights = model(images, ids, owner, return_attention=True)
    assert logits.shape == (len(ids), len(answers))
    assert weights.shape == (len(ids), ids.shape[1], 64)
    assert torch.all(weights >= 0) and torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2]))
    vqa.loss_fn(model, (images, owner, ids, answer)).backward()
    assert model.image.cnn[0][0].weight.grad.abs().sum() > 0
    assert model.question.embed.weight.grad.abs().sum() > 0


def test_model_rejects_mismatched_batches(small):
    data, vocab, _ = small
    model = vqa.build(vqa.Config(vocab_size=len(vocab)))
    images = torch.as_tensor(data.images[:3])
    ids = torch.as_tensor(data.question_ids[:5])
    with pytest.raises(ValueError, match="equal numbers"):
        model(images, ids)
    with pytest.raises(ValueError, match="one image row per question"):
        model(images, ids, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="vocab_size"):
        vqa.build(vqa.Config(vocab_size=2))


def test_training_steps_lower_the_loss_and_accuracy_by_type(small):
    data, vocab, answers = small
    torch.manual_seed(0)
    model = vqa.build(vqa.Config(vocab_size=len(vocab), n_answers=len(answers)))
    batches = vqa.ImageBatches(data, 12)
    history = mm.training.fit(model, batches, vqa.loss_fn, epochs=15, lr=3e-3, verbose=False)
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    predicted, attention = vqa.predict_answers(model, data, return_attention=True)
    result = vqa.accuracy_by_type(predicted, data)
    assert set(result) == {"all", *vqa.QUESTION_TYPES} and 0 <= result["all"] <= 1
    assert result["all"] == pytest.approx(float((predicted == data.answer).mean()))
    assert attention.shape == (len(data.answer), 10, 64)
    with pytest.raises(ValueError, match="one predicted answer per question"):
        vqa.accuracy_by_type(predicted[:-1], data)


def test_two_stage_training_on_cached_regions(small):
    data, vocab, answers = small
    torch.manual_seed(0)
    model = vqa.build(vqa.Config(vocab_size=len(vocab), n_answers=len(answers)))
    facts = shapes.read_facts(data.images)
    pre = vqa.TowerPretrainer(model.image)
    batch = (torch.as_tensor(data.images), torch.as_tensor(facts.color), torch.as_tensor(facts.shape))
    history = mm.training.fit(pre, [batch], vqa.tower_loss, epochs=5, lr=3e-3, verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    regions = vqa.cache_regions(model.image, data.images)
    assert regions.shape == (12, 64, 64) and regions.dtype == torch.float32
    batches = vqa.ImageBatches(data, 6, regions=regions)
    cached, owner, ids, answer = next(iter(batches))
    assert cached.dtype == torch.float32 and cached.shape[1:] == (64, 64)
    model.image.requires_grad_(False)
    model.zero_grad(set_to_none=True)
    vqa.loss_fn(model, (cached, owner, ids, answer)).backward()
    assert model.image.cnn[0][0].weight.grad is None       # the frozen tower gets no gradient
    assert model.attend.in_proj_weight.grad.abs().sum() > 0
    with_cache = vqa.predict_answers(model, data, regions=regions)
    assert np.array_equal(with_cache, vqa.predict_answers(model, data))
    with pytest.raises(ValueError, match="cached regions for every picture"):
        vqa.ImageBatches(data, 6, regions=regions[:5])


def test_split_images_keeps_every_question_of_a_picture_on_one_side(small):
    data, _, _ = small
    fit_part, held = data.split_images(3, seed=1)
    assert len(np.unique(held.image_index)) == 3
    assert not set(held.image_index) & set(fit_part.image_index)
    assert len(fit_part.answer) + len(held.answer) == len(data.answer)
    with pytest.raises(ValueError, match="n_validation"):
        data.split_images(12)


def test_mean_fusion_has_uniform_weights_and_the_same_parameters(small):
    data, vocab, answers = small
    config = vqa.Config(vocab_size=len(vocab), n_answers=len(answers))
    attention_model = vqa.build(config)
    mean_model = vqa.build(vqa.Config(vocab_size=len(vocab), n_answers=len(answers), fusion="mean"))
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(attention_model) == count(mean_model)
    images, owner, ids, _ = next(iter(vqa.ImageBatches(data, 4, shuffle=False)))
    regions = mean_model.image(images)
    _, weights = mean_model.answer(regions, ids, owner, return_attention=True)
    assert torch.allclose(weights, torch.full_like(weights, 1 / 64))
    # with one region repeated everywhere any attention is uniform, so the two fusions agree
    mean_model.load_state_dict(attention_model.state_dict())
    same = regions[:, :1].expand_as(regions)
    assert torch.allclose(attention_model.answer(same, ids, owner), mean_model.answer(same, ids, owner), atol=1e-5)
    assert not torch.allclose(attention_model.answer(regions, ids, owner), mean_model.answer(regions, ids, owner))
    with pytest.raises(ValueError, match="unknown fusion"):
        vqa.build(vqa.Config(vocab_size=len(vocab), fusion="max"))


def test_shuffle_blocks_moves_tiles_and_keeps_their_pixels(small):
    data, _, _ = small
    shuffled = vqa.shuffle_blocks(data.images, block=8, seed=0)
    assert shuffled.shape == data.images.shape and shuffled.dtype == np.uint8
    assert not np.array_equal(shuffled, data.images)
    tiles = lambda x: np.sort(x[0].reshape(8, 8, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(64, -1), axis=0)
    assert np.array_equal(tiles(shuffled), tiles(data.images))      # the same 64 tiles, moved
    assert np.array_equal(vqa.shuffle_blocks(data.images, block=64), data.images)
    with pytest.raises(ValueError, match="divide"):
        vqa.shuffle_blocks(data.images, block=7)


def test_attention_localisation_counts_hits_and_the_border():
    centre = np.array([[4.0, 4.0], [36.0, 20.0]])                  # regions 0 and 4 * 8 + 2 = 34
    maps = np.zeros((2, 64))
    maps[0, 0], maps[1, 34] = 1.0, 1.0
    result = vqa.attention_localisation(maps, centre)
    assert result["hit"] == 1.0 and result["chance"] == 1 / 64
    assert result["border"] == 0.5 and result["border_share"] == 28 / 64
    maps[1] = np.roll(maps[1], 1)
    assert vqa.attention_localisation(maps, centre)["hit"] == 0.5
    uniform = vqa.attention_localisation(np.full((2, 64), 1 / 64), centre)
    assert uniform["border"] == pytest.approx(28 / 64)
    with pytest.raises(ValueError, match="expected weights"):
        vqa.attention_localisation(maps[:, :16], centre)


def test_question_maps_average_over_real_words_only():
    attention = np.zeros((1, 3, 64))
    attention[0, 0, 5] = attention[0, 1, 9] = 1.0
    attention[0, 2, 0] = 1.0                                        # a padding row, ignored
    maps = vqa.question_maps(attention, np.array([[4, 7, 0]]))
    assert maps[0, 5] == maps[0, 9] == 0.5 and maps[0, 0] == 0


def test_train_on_regions_trains_a_fresh_model(small):
    data, vocab, answers = small
    config = vqa.Config(vocab_size=len(vocab), n_answers=len(answers))
    regions = vqa.cache_regions(vqa.build(config).image, data.images)
    model, history = vqa.train_on_regions(config, data, regions, epochs=8, images_per_batch=6, seed=0,
                                          verbose=False)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert not any(p.requires_grad for p in model.image.parameters())
    again, _ = vqa.train_on_regions(config, data, regions, epochs=8, images_per_batch=6, seed=0, verbose=False)
    assert torch.equal(model.head[0].weight, again.head[0].weight)   # the seed fixes the run


def test_without_summary_the_picture_reaches_the_answer_only_through_attention(small):
    data, vocab, answers = small
    torch.manual_seed(0)
    model = vqa.build(vqa.Config(vocab_size=len(vocab), n_answers=len(answers), summary=False))
    images, owner, ids, _ = next(iter(vqa.ImageBatches(data, 4, shuffle=False)))
    regions = model.image(images).detach()
    model.attend.in_proj_weight.data[2 * 64:].zero_()                # no values: attention carries nothing
    model.attend.in_proj_bias.data.zero_()
    logits = model.answer(regions, ids, owner)
    assert torch.allclose(logits, model.answer(torch.randn_like(regions), ids, owner), atol=1e-6)
