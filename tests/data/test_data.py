from pathlib import Path

import numpy as np
import pytest

from mmlearn import data
from mmlearn.data import cifar10, store


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLEARN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mnist5k_shapes_dtypes_and_split(fresh_cache):
    d = data.load_mnist5k()
    assert d.x_train.shape == (4000, 28, 28) and d.x_test.shape == (1000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert np.bincount(d.y_test).tolist() == [100] * 10  # stratified
    assert d.is_real and d.class_names == tuple("0123456789")
    # the two splits are disjoint images
    train_rows = {row.tobytes() for row in d.x_train}
    assert not any(row.tobytes() in train_rows for row in d.x_test[:200])


def test_split_is_the_same_every_time(fresh_cache):
    a = data.load_mnist5k()
    for f in fresh_cache.iterdir():  # rebuild from the package file
        f.unlink()
    b = data.load_mnist5k()
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)


def test_validation_split_comes_from_the_end_of_the_training_images(fresh_cache):
    d = data.load_mnist5k()
    small, with_val = d.subset(500, 100), d.subset(500, 100, n_val=300)
    np.testing.assert_array_equal(small.x_train, with_val.x_train)   # a small n_train: the same images
    np.testing.assert_array_equal(with_val.x_val, d.x_train[-300:])
    np.testing.assert_array_equal(with_val.y_val, d.y_train[-300:])
    assert small.x_val is None and len(with_val.x_test) == 100
    everything = d.subset(None, None, n_val=300)                      # all of it: validation kept out
    assert len(everything.x_train) == 3700
    train_rows = {row.tobytes() for row in everything.x_train}
    assert not any(row.tobytes() in train_rows for row in everything.x_val)
    with pytest.raises(ValueError, match="validation images cannot be cut from 4,000"):
        d.subset(None, None, n_val=4000)


def test_cifar10_offline_by_default_falls_back_at_once_and_says_so(fresh_cache, monkeypatch, tmp_path,
                                                                   capsys):
    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(cifar10, "host_reachable", lambda *a, **k: pytest.fail("tried the network offline"))
    d = data.load_cifar10()
    assert not d.is_real and "stand-in" in d.source
    assert d.x_train.shape == (4000, 32, 32, 3) and d.x_train.dtype == np.uint8
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "MMLEARN_ONLINE=1" in out  # one line, saying how to get the real one


def test_cifar10_stand_in_is_padded_mnist():
    mnist, standin = data.load_mnist5k(), data.cifar10_standin()
    np.testing.assert_array_equal(standin.x_train[:, 2:30, 2:30, 1], mnist.x_train)
    assert standin.x_train[:, :2].max() == 0


def test_cifar10_reads_a_real_archive_layout(fresh_cache, monkeypatch, tmp_path):
    """A folder laid out like Keras' extracted CIFAR-10 is found and read channels-last."""
    import pickle
    folder = tmp_path / "keras" / "datasets" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    d = data.load_cifar10()                                   # offline: a cached copy is still used
    assert d.is_real and d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(d.x_test[0, :, :, 0].ravel(), raw[:1024])  # red plane first


def test_corrupt_file_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "mnist_5k.csv.gz"
    bad.write_bytes(b"not the data")
    with pytest.raises(data.DataError, match="corrupt or a different version"):
        store.verified(bad, "mnist_5k.csv.gz")
    with pytest.raises(data.DataError, match="missing"):
        store.verified(tmp_path / "absent.gz", "mnist_5k.csv.gz")


def test_missing_package_says_how_to_install():
    with pytest.raises(data.DataError, match="not installed.*tasks.py"):
        store.package_dir("no_such_data_package_xyz")


def test_interrupted_cache_write_leaves_no_file(fresh_cache):
    def build():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        store.cached_arrays("broken", build)
    assert list(fresh_cache.iterdir()) == []


def test_unreadable_cache_is_rebuilt(fresh_cache):
    store.cached_arrays("thing", lambda: {"a": np.arange(3)})
    path = next(fresh_cache.iterdir())
    path.write_bytes(b"garbage")
    out = store.cached_arrays("thing", lambda: {"a": np.arange(4)})
    np.testing.assert_array_equal(out["a"], np.arange(4))


def test_spoken_digits():
    d = data.load_spoken_digits()
    assert len(d.x_train) == 2400 and len(d.x_test) == 600
    assert all(x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 13 for x in d.x_train)
    assert np.bincount(d.y_test).tolist() == [60] * 10


def test_pad_sequences_cuts_and_pads():
    seqs = [np.ones((3, 2), np.float32), np.ones((7, 2), np.float32)]
    out = data.pad_sequences(seqs, 5)
    assert out.shape == (2, 5, 2) and out[0, 3:].sum() == 0 and out[1].sum() == 10
    with pytest.raises(ValueError, match=r"expected \(frames, 2\)"):
        data.pad_sequences([np.ones((3, 2)), np.ones((3, 4))], 5)
    with pytest.raises(ValueError, match="no sequences"):
        data.pad_sequences([], 5)


def test_easy_vqa():
    d = data.load_easy_vqa()
    assert d.train.images.shape == (4000, 64, 64, 3) and d.test.images.shape == (1000, 64, 64, 3)
    assert len(d.train.questions) == len(d.train.answers) == len(d.train.image_index) == 38575
    assert len(d.test.questions) == 9673 and len(d.answer_vocab) == 13
    assert set(d.train.answers) <= set(d.answer_vocab)
    assert d.test.image_index.max() < 1000


def test_text_model_path_loads_a_bert():
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(data.text_model_path())
    assert config.model_type == "bert" and config.hidden_size == 384 and config.num_hidden_layers == 6


def test_paired_digits_keep_labels_and_splits():
    train, test = data.paired_digits(frames=40)
    speech = data.load_spoken_digits()
    assert train.image.shape == (4000, 28, 28) and train.audio.shape == (4000, 40, 13)
    np.testing.assert_array_equal(speech.y_train[train.audio_id], train.y)
    np.testing.assert_array_equal(speech.y_test[test.audio_id], test.y)
