"""Time every data loader of mmlearn offline: cold (empty cache) and warm, to the first batch.

    .venv/bin/python bench/loaders.py

Prints one row per loader; a loader that falls back to a stand-in prints its one-line notice
above its row. The cache goes to a temporary folder, so your own cache is not touched.
"""

import os
import tempfile
import time

import mmlearn as mm
from mmlearn import data
from mmlearn.training import ArrayBatches


def first_batch(loaded):
    """Arrays of the first batch of 64, the way a chapter would start training."""
    if isinstance(loaded, data.VQADataset):
        arrays = (loaded.train.images[loaded.train.image_index[:64]],)
    elif isinstance(loaded, data.SequenceDataset):
        arrays = (data.pad_sequences(loaded.x_train[:64], 48), loaded.y_train[:64])
    elif isinstance(loaded, tuple):  # paired_digits
        arrays = (loaded[0].image, loaded[0].audio, loaded[0].y)
    elif isinstance(loaded, data.ImageDataset):
        arrays = (loaded.x_train, loaded.y_train)
    else:  # a path
        return None
    return next(iter(ArrayBatches(*arrays, batch_size=64)))


def main():
    loaders = {
        "load_mnist5k": data.load_mnist5k,
        "load_cifar10": data.load_cifar10,
        "load_spoken_digits": data.load_spoken_digits,
        "paired_digits": data.paired_digits,
        "load_easy_vqa": data.load_easy_vqa,
        "text_model_path": data.text_model_path,
    }
    previous = os.environ.get("MMLEARN_CACHE")
    try:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["MMLEARN_CACHE"] = cache
            _time_loaders(loaders)
    finally:  # later benchmarks in the same process use the reader's cache again
        if previous is None:
            os.environ.pop("MMLEARN_CACHE", None)
        else:
            os.environ["MMLEARN_CACHE"] = previous


def _time_loaders(loaders):
    print(f"mmlearn {mm.__version__}, cache in a fresh temporary folder")
    print(f"{'loader':<20} {'cold (s)':>9} {'warm (s)':>9}  source")
    for name, load in loaders.items():
        times = []
        for _ in range(2):
            start = time.perf_counter()
            loaded = load()
            first_batch(loaded)
            times.append(time.perf_counter() - start)
        source = getattr(loaded, "source", None) or (str(loaded) if not isinstance(loaded, tuple) else
                                                     "MNIST-5k + spoken digits, paired by label")
        print(f"{name:<20} {times[0]:>9.2f} {times[1]:>9.2f}  {source}")


if __name__ == "__main__":
    main()
