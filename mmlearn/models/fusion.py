"""Two modalities of one digit: unimodal models, and fusion by concatenation, by late voting and
by transposed convolutions.

The data are :func:`mmlearn.data.paired_digits`: a handwritten digit (28x28 image) paired by
label with a spoken recording of the same digit (MFCC frames). Both are easy on their own, so
:class:`Corruption` first makes each modality weak (occluded, noisy images; a few noisy
frames of speech). Then five variants are compared:

============  ==========================================================================
image         image encoder -> adaptive average pooling to 4x4 -> dense
audio         audio encoder -> dense
concat        both encoders' feature vectors concatenated -> one joint classifier, its hidden
              layer sized to match deconv's parameter count (intermediate fusion)
late          the image and audio models trained apart; their log-probabilities added
              (late fusion)
deconv        the audio vector drawn onto the image's 14x14 grid by transposed
              convolutions, stacked with the image feature map, convolved jointly
              (intermediate fusion)
============  ==========================================================================

All models take ``(image, audio)``: image float32 (B, 1, 28, 28) in [0, 1]-ish units, audio
float32 (B, frames, 13) standardised MFCCs, and return logits (B, 10). :func:`build` makes a
variant from a :class:`Config`; :data:`IMAGE`, :data:`AUDIO`, :data:`CONCAT` and :data:`DECONV`
are the four the chapters train. :func:`run_experiment` trains every variant over several seeds
and reports mean and spread.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mmlearn import data as mmdata
from mmlearn.blocks import FORMULA_BN_MOMENTUM, ConvBlock, DeconvBlock, FrameEncoder
from mmlearn.config import RunSize, seed_everything
from mmlearn.inputs import check_array, to_float
from mmlearn.metrics import accuracy
from mmlearn.training import ArrayBatches, fit, predict

N_CLASSES = 10
N_MFCC = 13
POOLED = 4  # side of the grid that adaptive pooling leaves
WIDTH = 8   # channels of the first convolution; chapters I.6 and I.7 train every variant at it
VARIANTS = ("image", "audio", "concat", "late", "deconv")
FUSIONS = ("concat", "late", "deconv")


# --- corruption: make each modality weak on its own ------------------------------------------

@dataclasses.dataclass(frozen=True)
class Corruption:
    """How each modality is damaged, the same way for train and test.

    Images: a random ``occlude`` x ``occlude`` square is blanked, then Gaussian noise of std
    ``image_noise`` (pixel units, 1 = white) is added. Audio: only a random run of
    ``keep_frames`` consecutive frames of the recording survives, then Gaussian noise of std
    ``audio_noise`` (in units of each coefficient's standard deviation) is added everywhere.
    """

    occlude: int = 16
    image_noise: float = 0.6
    keep_frames: int = 3
    audio_noise: float = 1.0

    def __post_init__(self):
        if not 0 <= self.occlude <= 28:
            raise ValueError(f"occlude must be a square side in pixels between 0 and 28, got {self.occlude}")
        if self.keep_frames < 1:
            raise ValueError(f"keep_frames must be at least 1 frame, got {self.keep_frames}")
        if self.image_noise < 0 or self.audio_noise < 0:
            raise ValueError("noise levels are standard deviations and must be >= 0, got "
                             f"image_noise={self.image_noise}, audio_noise={self.audio_noise}")


def _check_audio(audio) -> np.ndarray:
    return check_array(np.asarray(audio), "NTC", what="MFCCs", channels=N_MFCC, dtypes=("float",))


def corrupt_images(images, corruption: Corruption, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28): scaled to [0, 1], occluded, noised."""
    images = check_array(np.asarray(images), "NHW", what="digit images", channels=None, size=28)
    x = to_float(images[..., None])                    # (N, 28, 28) -> (N, 1, 28, 28)
    side = corruption.occlude
    if side:
        rows, cols = rng.integers(0, 28 - side + 1, size=(2, len(x)))
        for img, r, c in zip(x, rows, cols):
            img[:, r:r + side, c:c + side] = 0.0
    x += rng.normal(0.0, corruption.image_noise, size=x.shape).astype(np.float32)
    return x


def audio_statistics(audio) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over the real (non-padding) frames of ``audio``."""
    audio = _check_audio(audio)
    frames = audio[np.any(audio != 0, axis=2)]  # (frames in all recordings, 13)
    return frames.mean(axis=0), frames.std(axis=0) + 1e-6


def corrupt_audio(audio, corruption: Corruption, rng: np.random.Generator,
                  stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Zero-padded MFCCs (N, frames, 13) -> standardised, cropped, noised float32, same shape.

    ``stats`` are :func:`audio_statistics` of the *training* audio, so test data are scaled
    with numbers learnt from training data only. Padding frames stay 0 before the noise.
    """
    audio = _check_audio(audio)
    mean, std = stats
    real = np.any(audio != 0, axis=2)                                  # (N, frames)
    x = np.where(real[..., None], (audio - mean) / std, 0.0).astype(np.float32)
    lengths = real.sum(axis=1)
    out = np.zeros_like(x)
    for i, length in enumerate(lengths):
        keep = min(corruption.keep_frames, int(length))
        start = int(rng.integers(0, int(length) - keep + 1))
        out[i, start:start + keep] = x[i, start:start + keep]
    out += rng.normal(0.0, corruption.audio_noise, size=out.shape).astype(np.float32)
    return out


@dataclasses.dataclass(frozen=True)
class FusionData:
    """Model-ready arrays: image float32 (N, 1, 28, 28), audio float32 (N, frames, 13), y int64."""

    image: np.ndarray
    audio: np.ndarray
    y: np.ndarray

    def subset(self, n: int | None) -> "FusionData":
        return FusionData(self.image[:n], self.audio[:n], self.y[:n])

    def split_validation(self, n_val: int) -> tuple["FusionData", "FusionData"]:
        """(the rest, the last ``n_val`` pairs): a validation split kept out of training."""
        if not 0 < n_val < len(self.y):
            raise ValueError(f"n_val={n_val} validation pairs cannot be cut from {len(self.y):,} pairs; "
                             f"ask for 1 to {len(self.y) - 1:,}")
        rest = len(self.y) - n_val
        return (FusionData(self.image[:rest], self.audio[:rest], self.y[:rest]),
                FusionData(self.image[rest:], self.audio[rest:], self.y[rest:]))


def make_data(corruption: Corruption = Corruption(), seed: int = 0,
              frames: int = 48) -> tuple[FusionData, FusionData]:
    """Paired, corrupted (train, test) data; ``seed`` draws the pairing and the damage."""
    train, test = mmdata.paired_digits(frames=frames, seed=seed)
    rng = np.random.default_rng(seed)
    stats = audio_statistics(train.audio)

    def prepare(split):
        return FusionData(corrupt_images(split.image, corruption, rng),
                          corrupt_audio(split.audio, corruption, rng, stats), split.y)

    return prepare(train), prepare(test)


# --- encoders (built from the shared ConvBlock and DeconvBlock) -----------------------------------

def conv(c_in: int, c_out: int, stride: int = 1) -> ConvBlock:
    """Part I's conv block with "same" padding: 3x3 at stride 1 keeps the grid, 4x4 at stride 2 halves it."""
    return ConvBlock(c_in, c_out, 3 if stride == 1 else 4, stride, bn_momentum=FORMULA_BN_MOMENTUM)


class ImageStem(nn.Module):
    """(B, 1, 28, 28) -> (B, 2w, 14, 14): the image's mid-level feature map."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(conv(1, width),                # (B, w, 28, 28)
                                    conv(width, 2 * width, 2))     # -> (B, 2w, 14, 14)

    def forward(self, image):
        return self.layers(image)


def pool_flatten(x):
    """Adaptive average pooling to a POOLED x POOLED grid, flattened: (B, C, H, W) -> (B, C * POOLED**2).

    Pooling to a small grid rather than to 1x1 keeps where on the digit a feature fired;
    a 7x7 map pooled to 1x1 throws that away, and a three-layer network then cannot tell
    a 6 from a 9.
    """
    return F.adaptive_avg_pool2d(x, POOLED).flatten(1)


class DigitImageEncoder(nn.Module):
    """(B, 1, 28, 28) -> (B, 2w * 16): stem, one more strided conv to 7x7, adaptive pooling to 4x4."""

    def __init__(self, width: int):
        super().__init__()
        self.stem = ImageStem(width)
        self.down = conv(2 * width, 2 * width, 2)                  # (B, 2w, 14, 14) -> (B, 2w, 7, 7)
        self.out_features = 2 * width * POOLED ** 2

    def forward(self, image):
        return pool_flatten(self.down(self.stem(image)))           # -> (B, 2w * 16)


# --- the five variants ------------------------------------------------------------------------

class ImageOnly(nn.Module):
    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.encoder = DigitImageEncoder(width)
        self.head = nn.Linear(self.encoder.out_features, N_CLASSES)

    def forward(self, image, audio):
        return self.head(self.encoder(image))


class AudioOnly(nn.Module):
    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.encoder = FrameEncoder(N_MFCC, 2 * width)
        self.head = nn.Linear(self.encoder.out_features, N_CLASSES)

    def forward(self, image, audio):
        return self.head(self.encoder(audio))


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ConcatFusion(nn.Module):
    """Intermediate fusion by concatenation: [image vector, audio vector] -> hidden layer -> logits.

    ``hidden=None`` sizes the hidden layer so that the model has as many parameters as
    ``DeconvFusion(width)`` (to within one hidden unit): the two learned fusions are compared
    at matched capacity.
    """

    def __init__(self, width: int = WIDTH, hidden: int | None = None):
        super().__init__()
        self.image, self.audio = DigitImageEncoder(width), FrameEncoder(N_MFCC, 2 * width)
        joint = self.image.out_features + self.audio.out_features
        if hidden is None:
            encoders = n_parameters(self.image) + n_parameters(self.audio)
            per_unit = joint + 1 + N_CLASSES          # one hidden unit: its weights, bias, output weights
            hidden = max(1, round((n_parameters(DeconvFusion(width)) - encoders - N_CLASSES) / per_unit))
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive number of units (or None to match "
                             f"DeconvFusion's parameter count), got {hidden!r}")
        self.head = nn.Sequential(nn.Linear(joint, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, N_CLASSES))

    def forward(self, image, audio):
        return self.head(torch.cat([self.image(image), self.audio(audio)], dim=1))  # (B, 4w) -> (B, 10)


class LateFusion(nn.Module):
    """Decision-level fusion: log p(y | image) + log p(y | audio), from two unimodal models.

    With a uniform class prior and modalities independent given the class, the sum is the
    Bayes-optimal combination (a product of experts).
    """

    def __init__(self, image_model: ImageOnly, audio_model: AudioOnly):
        super().__init__()
        self.image_model, self.audio_model = image_model, audio_model

    def forward(self, image, audio):
        return (F.log_softmax(self.image_model(image, audio), dim=1)
                + F.log_softmax(self.audio_model(image, audio), dim=1))


class DeconvFusion(nn.Module):
    """Transposed convolutions draw the audio vector onto the image's 14x14 grid.

    image -> stem -> (B, 2w, 14, 14)
    audio -> encoder -> (B, 2w, 1, 1) -> 7x7 -> 14x14 (transposed convs) -> (B, w, 14, 14)
    concatenated (B, 3w, 14, 14) -> strided conv (B, 2w, 7, 7) -> adaptive pool to 4x4 -> dense
    """

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.image = ImageStem(width)
        self.audio = FrameEncoder(N_MFCC, 2 * width)
        self.to_grid = nn.Sequential(
            DeconvBlock(2 * width, width, 7, 7, bn_momentum=FORMULA_BN_MOMENTUM),  # (B, 2w, 1, 1) -> (B, w, 7, 7)
            DeconvBlock(width, width, 4, 2, bn_momentum=FORMULA_BN_MOMENTUM))      # -> (B, w, 14, 14)
        self.joint = conv(3 * width, 2 * width, 2)                          # (B, 3w, 14, 14) -> (B, 2w, 7, 7)
        self.head = nn.Linear(2 * width * POOLED ** 2, N_CLASSES)

    def audio_map(self, audio):
        """The audio's (B, w, 14, 14) map, aligned with the image stem's grid."""
        return self.to_grid(self.audio(audio)[:, :, None, None])

    def forward(self, image, audio):
        x = torch.cat([self.image(image), self.audio_map(audio)], dim=1)  # (B, 3w, 14, 14)
        x = pool_flatten(self.joint(x))                                   # -> (B, 2w * 16)
        return self.head(x)


TRAINABLE = {"image": ImageOnly, "audio": AudioOnly, "concat": ConcatFusion, "deconv": DeconvFusion}


@dataclasses.dataclass(frozen=True)
class Config:
    """A trainable variant ("image", "audio", "concat" or "deconv"; "late" is assembled from
    trained image and audio models by :class:`LateFusion`) and its width."""

    variant: str = "deconv"
    width: int = WIDTH       # channels of the first convolution

    def __post_init__(self):
        if self.variant not in TRAINABLE:
            extra = " ('late' is built from trained models: LateFusion(image_model, audio_model))" \
                if self.variant == "late" else ""
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {', '.join(TRAINABLE)}{extra}")
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width must be a positive int (channels of the first conv), got {self.width!r}")


IMAGE = Config("image")
AUDIO = Config("audio")
CONCAT = Config("concat")
DECONV = Config("deconv")


def build(config: Config) -> nn.Module:
    """A fresh model of ``config.variant``."""
    return TRAINABLE[config.variant](config.width)


# --- training and the experiment ----------------------------------------------------------------

def classification_loss(model, batch):
    image, audio, y = batch
    return F.cross_entropy(model(image, audio), y)


def train(variant: str, train_data: FusionData, val_data: FusionData | None, size: RunSize,
          seed: int = 0, width: int = WIDTH, lr: float = 2e-3, verbose: bool = False):
    """Train one variant; return (model, history with per-epoch ``val_accuracy`` on ``val_data``,
    a split kept out of training; ``None``: no per-epoch evaluation)."""
    seed_everything(seed)
    model = build(Config(variant, width))
    batches = ArrayBatches(train_data.image, train_data.audio, train_data.y,
                           batch_size=size.batch_size, seed=seed)

    def evaluate(m):
        return {"val_accuracy": accuracy(predict(m, val_data.image, val_data.audio), val_data.y)}

    history = fit(model, batches, classification_loss, epochs=size.epochs, lr=lr,
                  evaluate=None if val_data is None else evaluate, verbose=verbose)
    return model, history


@dataclasses.dataclass
class FusionResults:
    """Test accuracy of each variant for each seed, plus what the plots need.

    ``accuracy[variant]``: one float per seed; ``histories[variant]``: per-seed histories;
    ``predictions[variant]``: per-seed predicted labels (N_test,); ``y_test``: per-seed labels.
    """

    seeds: tuple[int, ...]
    accuracy: dict[str, list[float]]
    histories: dict[str, list[dict]]
    predictions: dict[str, list[np.ndarray]]
    y_test: list[np.ndarray]

    def mean(self, variant: str) -> float:
        return float(np.mean(self.accuracy[variant]))

    def std(self, variant: str) -> float:
        return float(np.std(self.accuracy[variant], ddof=1)) if len(self.seeds) > 1 else 0.0

    def best(self, variants) -> str:
        return max(variants, key=self.mean)

    def table(self) -> str:
        rows = [f"{'variant':<8} {'mean':>7} {'std':>6}  per seed"]
        rows += [f"{v:<8} {self.mean(v):>7.1%} {self.std(v):>6.1%}  "
                 + " ".join(f"{a:.1%}" for a in self.accuracy[v]) for v in self.accuracy]
        return "\n".join(rows)


def run_experiment(size: RunSize, seeds=(0, 1, 2), corruption: Corruption = Corruption(),
                   width: int = WIDTH, verbose: bool = True) -> FusionResults:
    """Train image, audio, concat and deconv models for every seed, assemble late fusion from
    each seed's image and audio models, and collect test accuracies.

    Each seed draws its own pairing, corruption, initialisation and batch order. The per-epoch
    curves are measured on ``size.n_val`` training pairs kept out of training; the test pairs
    are scored once, at the end.
    """
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative ints, got {seeds}")
    results = FusionResults(seeds, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS},
                            {v: [] for v in VARIANTS}, [])
    for seed in seeds:
        train_data, test_data = make_data(corruption, seed=seed)
        train_data, val_data = train_data.split_validation(size.n_val) if size.n_val else (train_data, None)
        train_data, test_data = train_data.subset(size.n_train), test_data.subset(size.n_test)
        results.y_test.append(test_data.y)
        models = {}
        for variant in TRAINABLE:
            models[variant], history = train(variant, train_data, val_data, size, seed=seed, width=width)
            results.histories[variant].append(history)
        models["late"] = LateFusion(models["image"], models["audio"])
        results.histories["late"].append({})
        for variant in VARIANTS:
            pred = predict(models[variant], test_data.image, test_data.audio).argmax(dim=1).numpy()
            results.predictions[variant].append(pred)
            results.accuracy[variant].append(accuracy(pred, test_data.y))
        if verbose:
            print(f"seed {seed}: " + "  ".join(f"{v} {results.accuracy[v][-1]:.1%}" for v in VARIANTS))
    return results
