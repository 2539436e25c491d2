"""The network switch MMLEARN_ONLINE and the download path, against a server on 127.0.0.1.

The server is Python's own http.server in a thread. It serves a small archive laid out like
the real cifar-10-python.tar.gz, records every request, and stops when its test ends.
"""

import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
import time

import numpy as np
import pytest

from mmlearn import data
from mmlearn.data import cifar10, pretrained, store

N_TRAIN_PER_BATCH, N_TEST = 3, 4


def cifar_archive() -> tuple[bytes, dict]:
    """A .tar.gz with CIFAR-10's real layout and tiny batches; also the arrays it holds."""
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = N_TEST if name == "test_batch" else N_TRAIN_PER_BATCH
        batches[name] = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": name.encode()}
    batches["batches.meta"] = {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in batches.items():
            payload = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue(), batches


class Server:
    """An HTTP server on 127.0.0.1 that answers ``/cifar-10-python.tar.gz`` with ``body``."""

    def __init__(self, body: bytes, stall_s: float = 0.0):
        self.body, self.stall_s, self.requests = body, stall_s, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if server.stall_s:
                    time.sleep(server.stall_s)   # a host that accepts, then never answers in time
                if self.path != "/cifar-10-python.tar.gz":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def archive():
    return cifar_archive()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty Keras and mmlearn caches, so nothing found on this machine is used."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("MMLEARN_CACHE", str(tmp_path / "mmlearn"))
    return tmp_path


@pytest.fixture
def server(archive, monkeypatch):
    body, _ = archive
    with Server(body) as s:
        monkeypatch.setattr(cifar10, "CIFAR10_URL", s.url)
        monkeypatch.setitem(store.CHECKSUMS, "cifar-10-python.tar.gz", hashlib.sha256(body).hexdigest())
        yield s


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


# --- the switch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False), ("1", True),
                                             (" 1 ", True)])
def test_online_switch_values(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    else:
        monkeypatch.setenv("MMLEARN_ONLINE", value)
    assert data.online() is expected


@pytest.mark.parametrize("value", ["yes", "true", "2", "on", "off"])
def test_online_switch_refuses_other_values_and_says_what_is_allowed(monkeypatch, value):
    monkeypatch.setenv("MMLEARN_ONLINE", value)
    with pytest.raises(ValueError, match=r"MMLEARN_ONLINE=1 .*MMLEARN_ONLINE=0 \(or leave it unset\)"):
        data.online()
    with pytest.raises(ValueError, match="not understood"):
        data.load_cifar10()


# --- CIFAR-10 downloaded from the local server ----------------------------------------------------

def test_online_downloads_checks_caches_and_reads_the_archive(server, archive, caches, monkeypatch, capsys):
    monkeypatch.setenv("MMLEARN_ONLINE", "1")
    _, batches = archive
    d = data.load_cifar10()
    assert server.requests == ["/cifar-10-python.tar.gz"]
    assert capsys.readouterr().out == ""                  # real data: nothing to announce
    assert d.is_real and d.source == "CIFAR-10" and d.class_names == data.CIFAR10_CLASSES
    assert d.x_train.shape == (5 * N_TRAIN_PER_BATCH, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (N_TEST, 32, 32, 3) and d.y_test.dtype == np.int64
    # channels last, batches in order, labels kept
    first = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(d.x_train[0].transpose(2, 0, 1).ravel(), first)
    np.testing.assert_array_equal(d.x_train[-1].transpose(2, 0, 1).ravel(),
                                  batches["data_batch_5"][b"data"][-1])
    np.testing.assert_array_equal(d.y_test, batches["test_batch"][b"labels"])
    # cached in Keras' cache under its real name, no temporary file left; a second call reuses it
    assert files_under(caches / "keras") == ["datasets/cifar-10-python.tar.gz"]
    assert data.load_cifar10().is_real and len(server.requests) == 1


def test_wrong_checksum_raises_and_keeps_nothing(server, caches, monkeypatch):
    monkeypatch.setenv("MMLEARN_ONLINE", "1")
    monkeypatch.setitem(store.CHECKSUMS, "cifar-10-python.tar.gz", "0" * 64)
    with pytest.raises(data.DataError, match=r"CIFAR-10 archive downloaded from .* has SHA-256 .*not kept"):
        data.load_cifar10()
    assert len(server.requests) == 1
    assert files_under(caches) == []                      # no archive, no .part file, no npz


def test_offline_never_connects(server, caches, monkeypatch, capsys):
    """With the switch off, no connection is even attempted: socket connects raise."""
    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted offline: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    start = time.perf_counter()
    d = data.load_cifar10()
    assert time.perf_counter() - start < 5
    assert not d.is_real and server.requests == []
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "downloads are off: MMLEARN_ONLINE=1 fetches it" in out
    assert "/" not in out.split("using the")[0]          # no path of this machine in the notice
    assert files_under(caches / "keras") == [] if (caches / "keras").exists() else True


def test_online_but_nobody_listening_falls_back_fast_in_one_line(caches, monkeypatch, capsys):
    monkeypatch.setenv("MMLEARN_ONLINE", "1")
    with socket.socket() as s:                            # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(cifar10, "CIFAR10_URL", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
    start = time.perf_counter()
    d = data.load_cifar10()
    assert time.perf_counter() - start < 2 * store.NETWORK_TIMEOUT_S
    assert not d.is_real and "stand-in" in d.source
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "127.0.0.1 could not be reached within 3 s" in out


def test_online_host_that_stalls_is_given_up_within_seconds(archive, caches, monkeypatch, capsys):
    """A host that accepts the connection but sends nothing: the read times out, nothing is kept."""
    monkeypatch.setenv("MMLEARN_ONLINE", "1")
    monkeypatch.setattr(store, "NETWORK_TIMEOUT_S", 0.5)          # each read of the download
    with Server(archive[0], stall_s=3.0) as stalled:
        monkeypatch.setattr(cifar10, "CIFAR10_URL", stalled.url)
        start = time.perf_counter()
        d = data.load_cifar10()
        elapsed = time.perf_counter() - start
    assert elapsed < 2.5 and not d.is_real
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "the download from 127.0.0.1 failed" in out
    assert files_under(caches / "keras") == []


def test_download_argument_overrides_the_switch(server, caches, monkeypatch):
    monkeypatch.setenv("MMLEARN_ONLINE", "1")
    assert not data.load_cifar10(download=False, verbose=False).is_real
    assert server.requests == []
    monkeypatch.delenv("MMLEARN_ONLINE")
    assert data.load_cifar10(download=True).is_real and len(server.requests) == 1


# --- the pretrained towers ------------------------------------------------------------------------

def test_imagenet_weights_offline_say_so_without_a_path(monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("connected offline"))
    assert pretrained.imagenet_resnet18_state(verbose=True) is None
    out = capsys.readouterr().out
    assert out == ("ImageNet ResNet18 weights unavailable (not in torch's cache, and downloads are "
                   "off: MMLEARN_ONLINE=1 fetches them, 45 MB); training ResNet18 from scratch.\n")


def test_bert_offline_reads_only_the_local_cache(monkeypatch, tmp_path, capsys):
    """Offline, from_pretrained gets local_files_only=True: an empty cache falls back at once."""
    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("connected offline"))
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("connected offline"))
    calls = []
    import transformers
    original = transformers.AutoModel.from_pretrained

    def spy(name, *args, **kwargs):
        calls.append((name, kwargs.get("local_files_only")))
        return original(name, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", spy)
    tokenizer, model, name = pretrained.text_backbone("auto", verbose=True)
    assert name == "minilm" and calls[0] == ("bert-base-uncased", True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not in Hugging Face's cache, and downloads are off" in out


def test_hub_offline_block_makes_no_request_and_restores_the_setting(monkeypatch, tmp_path):
    from huggingface_hub import constants
    import transformers

    monkeypatch.delenv("MMLEARN_ONLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("connected offline"))
    before = constants.HF_HUB_OFFLINE
    with data.hub_offline():
        assert constants.HF_HUB_OFFLINE
        with pytest.raises(OSError):
            transformers.BertModel.from_pretrained("bert-base-uncased", local_files_only=True)
    assert constants.HF_HUB_OFFLINE == before
