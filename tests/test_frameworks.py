"""`import mmlearn` first makes any later import order of the frameworks safe."""
import itertools
import os
import re
import subprocess
import sys

import pytest

from tasks import sanitizer_rules

IMPORTS = {
    "tensorflow": "import tensorflow as tf; tf.constant(1.0)",
    "torchvision": "import torchvision; torchvision.models.resnet18()",
    "transformers": ("from transformers import BertConfig, BertModel; "
                     "BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, "
                     "num_attention_heads=2, intermediate_size=8))"),
}


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "MMLEARN_THREADS"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.parametrize("order", list(itertools.permutations(IMPORTS)), ids="-".join)
def test_any_import_order_after_mmlearn(order):
    code = "import mmlearn\n" + "\n".join(IMPORTS[name] for name in order) + "\nprint('ok')"
    result = run_python(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_tensorflow_is_quiet_from_start_up_to_a_seeded_fit():
    result = run_python(
        "import mmlearn as mm, numpy as np\n"
        "tf = mm.configure_tensorflow(); mm.seed_everything(0)\n"
        "m = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])\n"
        "m.compile('adam', 'mse'); m.fit(np.zeros((64, 4)), np.zeros((64, 2)), epochs=1, verbose=0)\n"
        "print(tf.reduce_sum(tf.ones(3)).numpy())")
    assert result.returncode == 0, result.stderr[-2000:]
    noisy = [line for line in result.stderr.splitlines() if line.strip() and not NO_DRIVER.search(line)]
    assert noisy == [], noisy


# TensorFlow's GPU-capable build looks for NVIDIA's driver while it loads, before any log setting
# applies, and says in two lines that it found none; on a machine with a GPU they are not printed.
# The notice is listed once, in the sanitiser's "drop: ..." rules, which also keep it out of the
# stored outputs and out of nbval's comparisons (a notebook's kernel may or may not forward it).
NO_DRIVER = re.compile("|".join(pattern.pattern for pattern, _ in sanitizer_rules("drop")))


def test_only_the_missing_driver_notice_is_let_through():
    assert NO_DRIVER.search("I0000 00:00:17.886408 12161 cudart_stub.cc:31] Could not find cuda drivers on "
                            "your machine, GPU will not be used.")
    assert not NO_DRIVER.search("E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory")


def test_bad_thread_count_is_explained():
    env = {**os.environ, "MMLEARN_THREADS": "two"}
    result = subprocess.run([sys.executable, "-c", "import mmlearn"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode != 0 and "MMLEARN_THREADS='two' is not a positive integer" in result.stderr
