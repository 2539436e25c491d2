import numpy as np
import pytest
import torch

from mmlearn import metrics


def test_accuracy_from_labels_and_scores():
    assert metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    assert metrics.accuracy(scores, [0, 0]) == 0.5
    with pytest.raises(ValueError, match="give 2 labels but targets 3"):
        metrics.accuracy([0, 1], [0, 1, 1])


def test_confusion_matrix_rows_are_true_classes():
    m = metrics.confusion_matrix([0, 1, 1, 2], [0, 0, 1, 2], n_classes=3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_recall_at_k():
    sim = np.array([[0.9, 0.5, 0.1], [0.8, 0.2, 0.3], [0.0, 0.1, 0.2]])
    r = metrics.recall_at_k(sim, np.arange(3), np.arange(3), ks=(1, 2, 3))
    assert r == {1: 2 / 3, 2: 2 / 3, 3: 1.0}
    # class-level hits: query 1 has label 0, like item 0
    r = metrics.recall_at_k(sim, [0, 0, 1], [0, 1, 1], ks=(1,))
    assert r[1] == 1.0
    with pytest.raises(ValueError, match="expected \\(queries, items\\)"):
        metrics.recall_at_k(sim, np.arange(2), np.arange(3))


def test_precision_recall_and_average_precision():
    actual = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
    predicted = np.array([[1, 1], [0, 1], [0, 1], [1, 0]], bool)
    pr = metrics.precision_recall(predicted, actual)
    assert pr["precision"].tolist() == [0.5, 2 / 3] and pr["recall"].tolist() == [0.5, 1.0]
    assert pr["micro_precision"] == 3 / 5 and pr["micro_recall"] == 3 / 4
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.7], [0.1, 0.6]])
    # tag 0 ranks items 0 (hit), 2, 1 (hit), 3: precision 1 at the first hit, 2/3 at the second
    assert np.allclose(metrics.average_precision(scores, actual), [(1 + 2 / 3) / 2, 1.0])
    with pytest.raises(ValueError, match="same shape, the second bool"):
        metrics.precision_recall(predicted, actual.astype(int))


def test_average_precision_agrees_with_scikit_learn_with_and_without_ties():
    from sklearn.metrics import average_precision_score
    rng = np.random.default_rng(0)
    actual = rng.random((200, 6)) < 0.3
    smooth = rng.random((200, 6))
    tied = np.round(smooth * 4) / 4  # five distinct scores: most items share a score
    for scores in (smooth, tied):
        ours = metrics.average_precision(scores, actual)
        theirs = [average_precision_score(actual[:, t], scores[:, t]) for t in range(6)]
        assert np.allclose(ours, theirs, atol=1e-12), (ours, theirs)


def test_tied_scores_are_ranked_together_whatever_order_the_items_come_in():
    actual = np.array([[True], [False], [False], [True]])
    scores = np.array([[0.5], [0.5], [0.5], [0.5]])  # one threshold: precision 2/4 at recall 1
    assert metrics.average_precision(scores, actual).tolist() == [0.5]
    assert metrics.average_precision(scores[::-1], actual[::-1]).tolist() == [0.5]


def test_below_states_the_bound_not_the_noise():
    assert metrics.below(4.03e-15, 1e-12) == metrics.below(5.67e-15, 1e-12) == "below 1e-12"
    assert metrics.below(3e-9, 1e-12) == "3.0e-09, NOT below 1e-12"
    with pytest.raises(ValueError, match="positive"):
        metrics.below(0.0, 0)
