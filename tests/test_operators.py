"""mmlearn.operators: the from-scratch operators agree with PyTorch and with each other."""

import mmlearn  # noqa: F401  (first: sets threads and the import order)

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlearn import operators as op

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("size, kernel, stride, padding", [(8, 3, 1, 1), (8, 4, 2, 1), (7, 3, 2, 0), (5, 5, 1, 2)])
def test_conv_and_its_transpose_match_pytorch(size, kernel, stride, padding):
    x = RNG.normal(size=(2, size, size))
    w = RNG.normal(size=(3, 2, kernel, kernel))
    y = op.conv2d(x, w, stride, padding)
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), stride=stride, padding=padding)[0]
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-10)
    assert y.shape[1] == op.conv_output_size(size, kernel, stride, padding)
    back = op.conv2d_transpose(y, w, stride, padding)
    ref_t = F.conv_transpose2d(torch.from_numpy(y)[None], torch.from_numpy(w), stride=stride, padding=padding)[0]
    np.testing.assert_allclose(back, ref_t.numpy(), atol=1e-10)


def test_transposed_conv_is_the_adjoint_and_the_matrix_transpose():
    x, w = RNG.normal(size=(2, 6, 6)), RNG.normal(size=(3, 2, 4, 4))
    y = RNG.normal(size=(3, 3, 3))
    assert np.isclose(np.vdot(op.conv2d(x, w, 2, 1), y), np.vdot(x, op.conv2d_transpose(y, w, 2, 1)))
    m = op.conv_matrix(w, x.shape, stride=2, padding=1)
    assert m.shape == (3 * 3 * 3, 2 * 6 * 6)
    np.testing.assert_allclose(m @ x.ravel(), op.conv2d(x, w, 2, 1).ravel(), atol=1e-12)
    np.testing.assert_allclose(m.T @ y.ravel(), op.conv2d_transpose(y, w, 2, 1).ravel(), atol=1e-12)


def test_output_size_arithmetic():
    assert op.conv_transpose_output_size(16, 4, 2, 1) == 32
    assert op.conv_transpose_output_size(4, 3, 2, 1, output_padding=1) == 8
    assert op.same_padding(3, 1) == 1 and op.same_padding(4, 2) == 1
    with pytest.raises(ValueError, match="kernel_size - stride to be even"):
        op.same_padding(3, 2)
    with pytest.raises(ValueError, match="output_padding must be in"):
        op.conv_transpose_output_size(4, 3, 2, output_padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        op.conv_output_size(2, 5)


@pytest.mark.parametrize("h, s", [(8, 1), (8, 4), (7, 3), (5, 2)])
def test_adaptive_avg_pool_matches_pytorch(h, s):
    x = RNG.normal(size=(3, h, h + 1))[:, :, :h]
    ref = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(x))[None], s)[0].numpy()
    np.testing.assert_allclose(op.adaptive_avg_pool2d(x, s), ref, atol=1e-12)


def test_softmax_cross_entropy_and_gradient():
    z = torch.tensor(RNG.normal(size=(4, 5)), requires_grad=True)
    labels = np.array([0, 4, 2, 2])
    loss = F.cross_entropy(z, torch.from_numpy(labels))
    loss.backward()
    assert np.isclose(op.cross_entropy(z.detach().numpy(), labels), loss.item())
    np.testing.assert_allclose(op.cross_entropy_grad(z.detach().numpy(), labels), z.grad.numpy(), atol=1e-12)
    assert np.allclose(op.softmax(np.array([[1000.0, 1000.0]])), 0.5)   # no overflow
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        op.cross_entropy(z.detach().numpy(), np.array([5, 0, 0, 0]))


@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 2, 6, 6)), r"shape \(C, H, W\)"),
    (np.zeros((3, 6, 6)), "the image has 3 channels"),
])
def test_bad_input_names_the_expected_form(bad, message):
    with pytest.raises(ValueError, match=message):
        op.conv2d(bad, np.zeros((3, 2, 3, 3)))


def test_shared_checks():
    assert op.check_n_classes(np.int64(10)) == 10
    with pytest.raises(ValueError, match="n_classes"):
        op.check_n_classes(True)
    with pytest.raises(ValueError, match="widths must be positive ints"):
        op.check_widths((4, True), "widths")
