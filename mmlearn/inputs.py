"""What the package's functions and networks take: one home for checking and converting inputs.

A wrong input fails where it enters, with a message that says what was expected, what came,
and how to fix it (``transpose with x.transpose(0, 2, 3, 1)``, ``shrink 64 px pictures with
mmlearn.data.shapes.downsample(x, 2)``). Two forms of picture meet in the package:

* **pictures** as the data sets hold them: uint8 (0-255), channels last, ``(N, H, W, C)``;
* **batches** as the PyTorch networks take them: float32 in [0, 1], channels first,
  ``(B, C, H, W)``.

:func:`check_array` checks the first (and any array described by a layout string such as
``"NHWC"``, ``"NHW"`` for grey digits or ``"NTC"`` for frames of audio features);
:func:`check_batch` checks the second at a network's ``forward``. :func:`to_float` turns
pictures into float images, :func:`float_images` checks and converts what the loaders give,
and :func:`to_uint8` turns a network's float output back into pictures.

This module does not import TensorFlow.
"""

from __future__ import annotations

import numpy as np
import torch

_DIM_NAMES = {"T": "frames"}         # layout letters shown as a word in messages; others as is
_RANGES = {"uint8": "0-255", "float32": "0-1", "float": "0-1"}   # what each dtype holds in a picture


class DtypeError(TypeError, ValueError):
    """An input of the wrong dtype (or type): a TypeError, and a ValueError like every other
    input the package refuses, so ``except ValueError`` catches it too."""


def _has_dtype(x, name: str) -> bool:
    """Whether ``x`` (NumPy array or tensor) is of dtype ``name``; ``"float"`` is any float."""
    found = str(x.dtype).removeprefix("torch.")
    return found.startswith(("float", "bfloat")) if name == "float" else found == name


def _transpose_hint(x, layout: str, channels: int) -> str:
    """How to move the channel axis into place, when ``x`` has it at the layout's other end."""
    c = layout.index("C")
    first = 1 if layout[0] in "NB" else 0
    other = first if c == len(layout) - 1 else len(layout) - 1
    if x.shape[other] != channels:
        return ""
    order = [i for i in range(len(layout)) if i != other]
    order.insert(c, other)
    call = "permute" if torch.is_tensor(x) else "transpose"
    return f"transpose with x.{call}({', '.join(map(str, order))})"


def _resize_hint(layout: str, channels, size: int, side: int, dtypes) -> str:
    """How to bring pictures of ``side`` px to ``size`` px: shapes.downsample when it takes them."""
    if layout == "NHWC" and channels == 3 and dtypes == ("uint8",) and side > size and side % size == 0:
        return f"shrink {side} px pictures with mmlearn.data.shapes.downsample(x, {side // size})"
    return f"resize them to {size}x{size}"


def check_array(x, layout: str = "NHWC", *, what: str = "images", channels: int | None = 3,
                size: int | None = None, dtypes: tuple[str, ...] | None = ("uint8",),
                unit_range: bool = False, resize: str | None = None, prepare: str | None = None):
    """Raise unless ``x`` is laid out as ``layout``; return it (a NumPy array unless a tensor).

    ``layout``: one letter per axis: ``N`` or ``B`` the batch, ``C`` the channels (``channels``
    of them, any number when ``None``), ``H`` and ``W`` the picture (``size`` x ``size`` px when
    given), ``T`` frames. ``dtypes``: the accepted dtypes, ``"float"`` for any float (``None``:
    any). ``unit_range``: float input must lie in [0, 1]. ``resize``: the fix for a wrong
    picture size, a template with ``{size}`` (expected) and ``{side}`` (got) in it; by default
    ``shapes.downsample`` where it applies, else "resize them". ``prepare``: the call that
    converts to this form, named when the dtype is wrong.

    Checked in this order, the first failure raised: number of axes, the channel axis (hint:
    the transposition that fixes it), the picture size (ValueError), the dtype
    (:class:`DtypeError`), the value range (ValueError).
    """
    x = x if torch.is_tensor(x) else np.asarray(x)
    shape = tuple(x.shape)
    dims = [channels if a == "C" and channels is not None else
            size if a in "HW" and size is not None else _DIM_NAMES.get(a, a) for a in layout]
    form = f"{what} of shape ({', '.join(map(str, dims))})"
    if "C" in layout and "H" in layout:
        form += " channels-last" if layout.endswith("C") else " channels-first"
    if dtypes is not None and len(dtypes) == 1:
        form += f" {dtypes[0]}"

    def fail(hint: str = ""):
        raise ValueError(f"expected {form}, got {shape}" + (f": {hint}" if hint else ""))

    if len(shape) != len(layout):
        hint = ""
        if "C" not in layout and len(shape) == len(layout) + 1:   # grey pictures with a channel axis
            hint = ("drop the channel axis with x[:, 0]" if shape[1] == 1 else
                    "drop the channel axis with x[..., 0]" if shape[-1] == 1 else "")
        fail(hint)
    if "C" in layout and channels is not None and shape[layout.index("C")] != channels:
        fail(_transpose_hint(x, layout, channels))
    spatial = [shape[layout.index(a)] for a in "HW" if a in layout]
    if size is not None and spatial != [size] * len(spatial):
        fail(resize.format(size=size, side=spatial[0]) if resize else
             _resize_hint(layout, channels, size, spatial[0], dtypes))
    if dtypes is not None and not any(_has_dtype(x, d) for d in dtypes):
        accepted = " or ".join(f"{d} ({_RANGES[d]})" if "H" in layout else d for d in dtypes)
        raise DtypeError(f"expected {what} as {accepted}, got dtype {x.dtype}"
                         + (f": convert them with {prepare}" if prepare else ""))
    if unit_range and _has_dtype(x, "float") and (x.numel() if torch.is_tensor(x) else x.size):
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            hint = ": pass them as uint8, or divide them by 255" if 0 <= low and high <= 255 else ""
            raise ValueError(f"expected float {what} in [0, 1], got values from {low:g} to {high:g}{hint}")
    return x


def check_batch(x, channels: int, multiple: int = 1, size: int | None = None, *, prepare: str) -> None:
    """Raise unless ``x`` is what a network's ``forward`` takes: a float tensor (B, C, H, W).

    ``size``: H = W = ``size``; otherwise H and W multiples of ``multiple``. ``prepare``: the
    call that turns the loaders' pictures into such a tensor, named in the message.
    """
    expected = (f"expected a float tensor of shape (B, {channels}, H, W), channels first"
                + (f", H = W = {size}" if size else f", H and W multiples of {multiple}"))
    if not torch.is_tensor(x):
        raise DtypeError(f"{expected}; got {type(x).__name__}. Convert images with {prepare}")
    if x.ndim != 4:
        raise ValueError(f"{expected}; got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DtypeError(f"{expected}; got dtype {x.dtype}. Scale uint8 images to [0, 1] with {prepare}")
    if x.shape[1] != channels:
        hint = (": transpose channels-last input with x.permute(0, 3, 1, 2)"
                if x.shape[-1] == channels else "")
        raise ValueError(f"{expected}; got {tuple(x.shape)}{hint}")
    h, w = x.shape[2:]
    if (size and (h, w) != (size, size)) or h % multiple or w % multiple:
        raise ValueError(f"{expected}; got {tuple(x.shape)}")


def check_image_size(image_size, multiple: int = 1) -> int:
    """``image_size`` as an int, refused unless a positive multiple of ``multiple``."""
    if not isinstance(image_size, (int, np.integer)) or image_size < 1 or image_size % multiple:
        raise ValueError(f"image_size must be a positive multiple of {multiple}, got {image_size!r}")
    return int(image_size)


# --- conversions ---------------------------------------------------------------------------------

def to_float(images, channels_first: bool = True):
    """Pictures (N, H, W, C), uint8 (0-255) or float (already 0-1) -> float32 in [0, 1], moved to
    (N, C, H, W) unless ``channels_first=False``. NumPy in, NumPy out (contiguous); a tensor
    stays a tensor on its device. No checks: check first with :func:`check_array`."""
    if torch.is_tensor(images):
        x = images.permute(0, 3, 1, 2) if channels_first else images   # (N, H, W, C) -> (N, C, H, W)
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if channels_first else x


def float_images(images, channels: int = 3, channels_first: bool = True) -> np.ndarray:
    """Pictures as the loaders give them -> float32 NumPy in [0, 1], channels first (or last).

    Accepts uint8 (0-255) or float (already in [0, 1]), channels last (N, H, W, C); grey
    (N, H, W) when ``channels == 1``. Both frameworks' ``prepare_images`` start here, so they
    accept and refuse the same inputs.
    """
    x = np.asarray(images)
    if channels == 1 and x.ndim == 3:
        x = x[..., None]                                      # (N, H, W) -> (N, H, W, 1)
    check_array(x, channels=channels, dtypes=("uint8", "float"), unit_range=True)
    return to_float(x, channels_first)


def to_uint8(x) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) NumPy, ready for ``plots.image_grid``;
    values outside [0, 1] are clipped. The inverse of :func:`to_float` on uint8 pictures."""
    x = torch.as_tensor(x)
    return (x.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
