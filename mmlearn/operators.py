"""The operators of Part I's formula, written from scratch in NumPy.

``y = softmax(g_GC(p_AP(c_R(c_C(x)))))`` uses four operators; the math chapter checks each of
them against PyTorch and TensorFlow, and the two frameworks' networks share the size rules
and argument checks below, so that both make exactly the same choices.

* output-size arithmetic of convolution and transposed convolution, and "same" padding;
* convolution ``c_C`` (cross-correlation, as every framework computes it), written both as a
  loop and as a matrix ``M`` acting on the flattened image;
* transposed convolution ``c_R``: the adjoint ``M^T`` of that matrix, computed by scattering
  each input pixel times the kernel into the output;
* adaptive average pooling ``p_AP``;
* softmax, cross-entropy and its gradient ``p - y`` with respect to the logits.

Images here are single examples, channels first: ``(C, H, W)``; kernels are
``(C_out, C_in, k, k)`` as in PyTorch's ``Conv2d``.
"""

from __future__ import annotations

import math

import numpy as np

from mmlearn.inputs import check_array


# --- size arithmetic -----------------------------------------------------------------------

def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution: ``floor((size + 2 * padding - kernel) / stride) + 1``."""
    if min(size, kernel, stride) < 1 or padding < 0:
        raise ValueError(f"size, kernel and stride must be >= 1 and padding >= 0, got size={size}, "
                         f"kernel={kernel}, stride={stride}, padding={padding}")
    if size + 2 * padding < kernel:
        raise ValueError(f"the kernel ({kernel}) is larger than the padded input ({size + 2 * padding})")
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """Output length of a transposed convolution:
    ``(size - 1) * stride - 2 * padding + kernel + output_padding``.

    ``output_padding`` (``0 <= output_padding < stride``) picks one of the ``stride`` input
    sizes that a strided convolution maps to the same output size.
    """
    if min(size, kernel, stride) < 1 or padding < 0:
        raise ValueError(f"size, kernel and stride must be >= 1 and padding >= 0, got size={size}, "
                         f"kernel={kernel}, stride={stride}, padding={padding}")
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding must be in [0, stride), got {output_padding} with stride {stride}")
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def same_padding(kernel: int, stride: int) -> int:
    """Padding per side that makes a conv output ``size / stride`` (Keras' ``"same"``), or the
    transposed conv output ``size * stride``.

    Keras pads ``kernel - stride`` pixels in total and puts an odd one at the end; PyTorch pads
    both sides equally, so the frameworks agree only when ``kernel - stride`` is even.
    """
    if kernel < stride or (kernel - stride) % 2:
        raise ValueError(f"kernel_size={kernel}, stride={stride}: 'same' padding needs "
                         "kernel_size - stride to be even and non-negative (e.g. 3 with stride 1, "
                         "4 with stride 2) so that both sides get the same padding")
    return (kernel - stride) // 2


# --- argument checks both frameworks' networks share -------------------------------------------

def check_n_classes(n_classes) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an int of at least 2 (10 for CIFAR-10 and the digits), "
                         f"got {n_classes!r}")
    return int(n_classes)


def check_widths(widths, name: str) -> tuple[int, ...]:
    widths = tuple(widths)
    if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"{name} must be positive ints (channels per stage), got {widths!r}")
    return tuple(int(w) for w in widths)


# --- convolution and its transpose ---------------------------------------------------------------

def _check_image_and_kernel(x: np.ndarray, w: np.ndarray, channel_axis: int) -> None:
    check_array(x, "CHW", what="one image", channels=None, dtypes=None)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"expected a square kernel of shape (C_out, C_in, k, k), got {w.shape}")
    if x.shape[0] != w.shape[channel_axis]:
        raise ValueError(f"the image has {x.shape[0]} channels but the kernel {w.shape} expects "
                         f"{w.shape[channel_axis]}")


def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Convolution as frameworks compute it (cross-correlation, no flip): (C_in, H, W) -> (C_out, H', W')."""
    _check_image_and_kernel(x, w, channel_axis=1)
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    h_out = conv_output_size(x.shape[1], k, stride, padding)
    w_out = conv_output_size(x.shape[2], k, stride, padding)
    out = np.zeros((w.shape[0], h_out, w_out), dtype=np.result_type(x, w))
    for i in range(h_out):
        for j in range(w_out):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k]   # (C_in, k, k)
            out[:, i, j] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2]))
    return out


def conv2d_transpose(y: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0,
                     output_padding: int = 0) -> np.ndarray:
    """Transposed convolution with the *same* kernel as :func:`conv2d`: (C_out, H', W') -> (C_in, H, W).

    Each input pixel scatters ``pixel * kernel`` into a ``k x k`` window of the output, windows
    ``stride`` apart; then ``padding`` pixels are cut from each border. This is exactly the
    adjoint of :func:`conv2d`: ``<conv2d(x), y> == <x, conv2d_transpose(y)>``.
    """
    _check_image_and_kernel(y, w, channel_axis=0)
    k = w.shape[-1]
    h_in, w_in = y.shape[1:]
    full = np.zeros((w.shape[1], (h_in - 1) * stride + k + output_padding,
                     (w_in - 1) * stride + k + output_padding), dtype=np.result_type(y, w))
    for i in range(h_in):
        for j in range(w_in):
            # (C_out,) x (C_out, C_in, k, k) -> (C_in, k, k)
            full[:, i * stride:i * stride + k, j * stride:j * stride + k] += np.tensordot(y[:, i, j], w, axes=1)
    h_out = conv_transpose_output_size(h_in, k, stride, padding, output_padding)
    w_out = conv_transpose_output_size(w_in, k, stride, padding, output_padding)
    return full[:, padding:padding + h_out, padding:padding + w_out]


def conv_matrix(w: np.ndarray, in_shape, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The matrix ``M`` with ``conv2d(x).ravel() == M @ x.ravel()`` for images of ``in_shape`` (C, H, W).

    Column ``n`` is the convolution of the ``n``-th unit image, so ``M`` has shape
    ``(C_out * H' * W', C * H * W)``; its transpose ``M.T`` is the transposed convolution.
    """
    in_shape = tuple(in_shape)
    n = math.prod(in_shape)
    columns = []
    for idx in range(n):
        unit = np.zeros(n)
        unit[idx] = 1.0
        columns.append(conv2d(unit.reshape(in_shape), w, stride, padding).ravel())
    return np.stack(columns, axis=1)


# --- pooling, softmax, cross-entropy --------------------------------------------------------------

def adaptive_avg_pool2d(x: np.ndarray, output_size: int) -> np.ndarray:
    """Adaptive average pooling of (C, H, W) to (C, s, s): bin ``i`` covers rows
    ``floor(i * H / s)`` up to ``ceil((i + 1) * H / s)`` (neighbouring bins may overlap)."""
    if x.ndim != 3:
        raise ValueError(f"expected one feature map of shape (C, H, W), got {x.shape}")
    if output_size < 1:
        raise ValueError(f"output_size must be at least 1, got {output_size}")
    c, h, w = x.shape
    out = np.zeros((c, output_size, output_size), dtype=x.dtype)
    for i in range(output_size):
        r0, r1 = (i * h) // output_size, -((-(i + 1) * h) // output_size)
        for j in range(output_size):
            c0, c1 = (j * w) // output_size, -((-(j + 1) * w) // output_size)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so that large logits do not overflow."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer class labels of shape (N,), got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {labels.min()} to {labels.max()}")
    return np.eye(n_classes)[labels]


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the batch of ``-log softmax(logits)[label]``; logits (N, C), labels (N,)."""
    y = _one_hot(labels, logits.shape[-1])
    return float(-(y * np.log(softmax(logits))).sum(axis=1).mean())


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to the logits: ``(softmax(z) - y) / N``."""
    return (softmax(logits) - _one_hot(labels, logits.shape[-1])) / len(logits)
