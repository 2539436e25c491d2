"""mmlearn.inputs: each check's failures and the fix each message names, and the conversions."""

import mmlearn  # noqa: F401  (first: sets threads and the import order)

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from mmlearn import inputs


def pictures(shape=(2, 8, 8, 3), dtype=np.uint8):
    return (np.arange(np.prod(shape)).reshape(shape) % 256).astype(dtype)


# --- check_array ----------------------------------------------------------------------------

def test_a_valid_array_comes_back_as_numpy_and_a_tensor_stays_a_tensor():
    x = inputs.check_array(pictures().tolist(), size=8, dtypes=None)
    assert isinstance(x, np.ndarray) and x.shape == (2, 8, 8, 3)
    t = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    assert inputs.check_array(t) is t
    assert inputs.check_array(np.zeros((3, 5, 7)), "CHW", channels=None, dtypes=None).shape == (3, 5, 7)


@pytest.mark.parametrize("bad, layout, kwargs, message", [
    (np.zeros((8, 8, 3), np.uint8), "NHWC", {},
     r"^expected images of shape \(N, H, W, 3\) channels-last uint8, got \(8, 8, 3\)$"),
    (np.zeros((2, 1, 28, 28), np.uint8), "NHW", {"channels": None, "size": 28},
     r"\(N, 28, 28\) uint8, got \(2, 1, 28, 28\): drop the channel axis with x\[:, 0\]$"),
    (np.zeros((2, 28, 28, 1), np.uint8), "NHW", {"channels": None},
     r"drop the channel axis with x\[\.\.\., 0\]$"),
    (np.zeros((2, 28, 28, 3), np.uint8), "NHW", {"channels": None}, r"got \(2, 28, 28, 3\)$"),
])
def test_the_wrong_number_of_axes_is_refused(bad, layout, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inputs.check_array(bad, layout, **kwargs)


@pytest.mark.parametrize("bad, layout, kwargs, fix", [
    (np.zeros((2, 3, 8, 8), np.uint8), "NHWC", {}, "x.transpose(0, 2, 3, 1)"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "NHWC", {}, "x.permute(0, 2, 3, 1)"),
    (torch.zeros(2, 8, 8, 3), "NCHW", {"dtypes": None}, "x.permute(0, 3, 1, 2)"),
    (np.zeros((2, 13, 40), np.float32), "NTC", {"channels": 13, "dtypes": ("float",)}, "x.transpose(0, 2, 1)"),
])
def test_a_misplaced_channel_axis_names_the_transposition(bad, layout, kwargs, fix):
    with pytest.raises(ValueError) as err:
        inputs.check_array(bad, layout, **kwargs)
    assert str(err.value).endswith(f": transpose with {fix}")


def test_the_layout_and_a_frames_axis_are_named_in_the_message():
    with pytest.raises(ValueError, match=r"of shape \(N, 3, 8, 8\) channels-first, got \(2, 3, 16, 16\)"):
        inputs.check_array(torch.zeros(2, 3, 16, 16), "NCHW", size=8, dtypes=None)
    with pytest.raises(ValueError, match=r"^expected MFCCs of shape \(N, frames, 13\) float, got \(2, 40, 12\)$"):
        inputs.check_array(np.zeros((2, 40, 12), np.float32), "NTC", what="MFCCs", channels=13,
                           dtypes=("float",))


def test_wrong_channels_without_a_transposition_get_no_hint():
    with pytest.raises(ValueError, match=r"got \(2, 8, 8, 4\)$"):
        inputs.check_array(np.zeros((2, 8, 8, 4), np.uint8))


@pytest.mark.parametrize("shape, kwargs, hint", [
    ((2, 64, 64, 3), {}, "shrink 64 px pictures with mmlearn.data.shapes.downsample(x, 2)"),
    ((2, 96, 96, 3), {}, "shrink 96 px pictures with mmlearn.data.shapes.downsample(x, 3)"),
    ((2, 40, 40, 3), {}, "resize them to 32x32"),
    ((2, 16, 16, 3), {}, "resize them to 32x32"),
    ((2, 64, 64, 3), {"dtypes": ("uint8", "float32")}, "resize them to 32x32"),   # not downsample's input
    ((2, 64, 64, 3), {"resize": "rebuild with image_size={side} (not {size})"}, "rebuild with image_size=64 (not 32)"),
])
def test_a_wrong_picture_size_says_how_to_fix_it(shape, kwargs, hint):
    with pytest.raises(ValueError) as err:
        inputs.check_array(np.zeros(shape, np.uint8), size=32, **kwargs)
    assert str(err.value) == (f"expected images of shape (N, 32, 32, 3) channels-last"
                              f"{' uint8' if 'dtypes' not in kwargs else ''}, got {shape}: {hint}")


def test_a_wrong_dtype_is_both_a_type_error_and_a_value_error():
    with pytest.raises(inputs.DtypeError, match=r"^expected pictures as uint8 \(0-255\), got dtype float32$") as err:
        inputs.check_array(np.zeros((2, 8, 8, 3), np.float32), what="pictures")
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    with pytest.raises(inputs.DtypeError, match=r"uint8 \(0-255\) or float \(0-1\), got dtype torch.int64$"):
        inputs.check_array(torch.zeros(2, 8, 8, 3, dtype=torch.int64), dtypes=("uint8", "float"))
    with pytest.raises(inputs.DtypeError, match=r"as float32 \(0-1\), got dtype float64: convert them with f\(x\)$"):
        inputs.check_array(np.zeros((2, 8, 8, 3)), dtypes=("float32",), prepare="f(x)")
    with pytest.raises(inputs.DtypeError, match=r"^expected MFCCs as float, got dtype int64$"):   # no range
        inputs.check_array(np.zeros((2, 5, 13), np.int64), "NTC", what="MFCCs", channels=13, dtypes=("float",))


def test_any_float_dtype_counts_as_float():
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        inputs.check_array(torch.zeros(1, 2, 2, 3, dtype=dtype), dtypes=("float",))
    inputs.check_array(np.zeros((1, 2, 2, 3), np.float16), dtypes=("float",))


def test_floats_outside_the_unit_range_are_refused_only_when_asked():
    x = pictures(dtype=np.float32)                               # 0..255 as floats
    with pytest.raises(ValueError, match=r"in \[0, 1\], got values from 0 to 255: pass them as uint8, or "
                                         r"divide them by 255$"):
        inputs.check_array(x, dtypes=("uint8", "float"), unit_range=True)
    with pytest.raises(ValueError, match=r"got values from -1 to 0$"):
        inputs.check_array((np.eye(3, dtype=np.float32) - 1)[None, ..., None], "NHWC", channels=1,
                           dtypes=("float",), unit_range=True)
    assert inputs.check_array(x, dtypes=("float",)) is x          # not asked
    inputs.check_array(x / 255, dtypes=("float",), unit_range=True)
    inputs.check_array(np.full((1, 2, 2, 3), 255, np.uint8), unit_range=True)   # uint8 has its own range


# --- check_batch and check_image_size -------------------------------------------------------------

@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((2, 3, 8, 8), np.float32), TypeError, r"; got ndarray\. Convert images with prep\(x\)$"),
    (torch.zeros(3, 8, 8), ValueError, r"; got shape \(3, 8, 8\)$"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), TypeError,
     r"; got dtype torch.uint8\. Scale uint8 images to \[0, 1\] with prep\(x\)$"),
    (torch.zeros(2, 8, 8, 3), ValueError,
     r"; got \(2, 8, 8, 3\): transpose channels-last input with x.permute\(0, 3, 1, 2\)$"),
    (torch.zeros(2, 1, 8, 8), ValueError, r"; got \(2, 1, 8, 8\)$"),
    (torch.zeros(2, 3, 8, 6), ValueError, r"^expected a float tensor of shape \(B, 3, H, W\), channels first, "
                                          r"H and W multiples of 4; got \(2, 3, 8, 6\)$"),
])
def test_a_network_input_must_be_a_float_batch_channels_first(bad, error, message):
    with pytest.raises(error, match=message):
        inputs.check_batch(bad, 3, 4, prepare="prep(x)")


def test_a_network_input_of_one_size():
    inputs.check_batch(torch.zeros(2, 3, 8, 8), 3, size=8, prepare="prep(x)")
    with pytest.raises(ValueError, match=r"channels first, H = W = 8; got \(2, 3, 16, 16\)$"):
        inputs.check_batch(torch.zeros(2, 3, 16, 16), 3, size=8, prepare="prep(x)")


def test_image_size_is_a_positive_multiple():
    assert inputs.check_image_size(np.int64(32), 8) == 32 and type(inputs.check_image_size(32, 8)) is int
    for bad in (30, 0, -8, 32.0, "32"):
        with pytest.raises(ValueError, match=f"image_size must be a positive multiple of 8, got {bad!r}"):
            inputs.check_image_size(bad, 8)


# --- conversions ------------------------------------------------------------------------------

def test_to_float_scales_uint8_and_moves_the_channel_axis():
    x = pictures()
    f = inputs.to_float(x)
    assert f.dtype == np.float32 and f.shape == (2, 3, 8, 8) and f.flags.c_contiguous
    assert np.array_equal(f, x.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    last = inputs.to_float(x, channels_first=False)
    assert last.shape == x.shape and np.array_equal(last, f.transpose(0, 2, 3, 1))
    floats = inputs.to_float(x / 255.0)                             # float64 in [0, 1]: cast, not scaled
    assert floats.dtype == np.float32 and np.allclose(floats, f)


def test_to_float_keeps_a_tensor_a_tensor_with_the_same_numbers():
    x = pictures()
    t = inputs.to_float(torch.from_numpy(x))
    assert torch.is_tensor(t) and t.dtype == torch.float32 and t.shape == (2, 3, 8, 8)
    assert torch.equal(t, torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0)
    assert np.array_equal(t.numpy(), inputs.to_float(x))           # NumPy and PyTorch agree
    assert inputs.to_float(torch.ones(1, 2, 2, 3, dtype=torch.float64)).max() == 1.0


def test_float_images_checks_then_converts():
    x = pictures()
    assert np.array_equal(inputs.float_images(x), inputs.to_float(x))
    assert inputs.float_images(x, channels_first=False).shape == (2, 8, 8, 3)
    assert inputs.float_images(x[..., 0], channels=1).shape == (2, 1, 8, 8)   # grey gains its axis
    with pytest.raises(ValueError, match=r"transpose with x.transpose\(0, 2, 3, 1\)"):
        inputs.float_images(x.transpose(0, 3, 1, 2))
    with pytest.raises(TypeError, match=r"uint8 \(0-255\) or float \(0-1\), got dtype int32"):
        inputs.float_images(x.astype(np.int32))
    with pytest.raises(ValueError, match="divide them by 255"):
        inputs.float_images(x.astype(np.float32))


def test_uint8_round_trip():
    x = np.arange(256 * 3, dtype=np.int64).reshape(1, 16, 16, 3).astype(np.uint8)   # every value
    assert np.array_equal(inputs.to_uint8(inputs.to_float(x)), x)
    assert np.array_equal(inputs.to_uint8(inputs.to_float(torch.from_numpy(x))), x)
    back = inputs.to_uint8(torch.tensor([-0.5, 0.2, 1.5]).view(1, 3, 1, 1))   # clipped, rounded
    assert back.dtype == np.uint8 and back.shape == (1, 1, 1, 3) and back.ravel().tolist() == [0, 51, 255]


def test_the_module_imports_numpy_and_torch_only():
    tree = ast.parse((Path(inputs.__file__)).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "numpy", "torch"}, imported
