"""tasks.py, the one entry point: what it does to stored outputs and how it picks environments."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tasks)


def test_scrub_folds_every_machine_path_and_keeps_the_rest(tmp_path):
    traceback = ["\x1b[32m/work/main/mmlearn/models/audio.py:159\x1b[39m, in transcribe",
                 "/home/ana/.venv/lib/python3.13/site-packages/torch/nn/modules/module.py:1783",
                 "C:\\Users\\ana\\venv\\Lib\\site-packages\\torch\\x.py"]
    stream = "Downloading to /root/.cache/torch/hub/checkpoints/resnet18.pth\nratio 1:2 kept\n"
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": traceback},
        {"output_type": "stream", "name": "stdout", "text": [stream]},
        {"output_type": "display_data", "data": {"image/png": "iVBOR/root/x", "text/plain": ["<Figure>"]}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps(nb))
    tasks.scrub_outputs(path)
    out = json.loads(path.read_text())["cells"][0]["outputs"]
    assert out[0]["traceback"][0] == "\x1b[32mmmlearn/models/audio.py:159\x1b[39m, in transcribe"
    assert out[0]["traceback"][1] == "site-packages/torch/nn/modules/module.py:1783"
    assert out[0]["traceback"][2].startswith("site-packages/torch")
    assert out[1]["text"] == ["Downloading to ~/.cache/torch/hub/checkpoints/resnet18.pth\nratio 1:2 kept\n"]
    assert out[2]["data"]["image/png"] == "iVBOR/root/x", "pictures are data, never rewritten"


def test_the_other_numerical_configuration_differs_from_the_default():
    env = tasks.other_numerics()
    assert env["MMLEARN_THREADS"] == "1" and env["OPENBLAS_CORETYPE"]
    assert set(tasks.NUMERICAL_NOTEBOOKS) >= {"chapters/part1/02_concepts.ipynb", "chapters/part1/03_math.ipynb",
                                               "chapters/part1/05_pytorch.ipynb", "chapters/part2/03_algorithms.ipynb"}
    assert all((ROOT / nb).exists() for nb in tasks.NUMERICAL_NOTEBOOKS)


def test_the_gpu_switch_adds_the_gpu_extra_and_changes_the_install_stamp(monkeypatch):
    monkeypatch.delenv("MMLEARN_GPU", raising=False)
    plain = tasks.install_inputs_digest()
    assert tasks.extras() == ".[book,test]"
    monkeypatch.setenv("MMLEARN_GPU", "1")
    assert tasks.extras() == ".[book,test,gpu]"
    assert tasks.install_inputs_digest() != plain


def test_supported_pythons_match_requires_python():
    import tomllib
    from packaging.specifiers import SpecifierSet
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert [f"{a}.{b}" for a, b in tasks.SUPPORTED_PYTHONS] == [v for v in ("3.10", "3.11", "3.12", "3.13", "3.14")
                                                               if spec.contains(f"{v}.0")]


def test_this_python_is_found_as_itself():
    major, minor = sys.version_info[:2]
    assert tasks.find_python(major, minor) == Path(sys.executable)


def test_execute_into_needs_a_folder():
    with pytest.raises(SystemExit, match="--into needs a folder"):
        tasks.execute("--into")


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the load meter reads Linux's /proc")
def test_the_load_meter_counts_a_childs_cpu_time_as_ours_not_as_other_load():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    before = tasks.own_busy_seconds()
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert tasks.own_busy_seconds() - before >= 0.9  # the child's second of CPU, once waited for
    assert tasks.machine_busy_seconds() is not None


def test_timing_refuses_a_busy_machine_unless_told_it_is_loaded(monkeypatch):
    class Busy:
        cores = 1.5
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            pass
    monkeypatch.setattr(tasks, "OtherLoad", Busy)
    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(SystemExit, match="1.50 of this machine's .* cores busy"):
        tasks.refuse_if_busy(allow_loaded=False)
    tasks.refuse_if_busy(allow_loaded=True)


def test_the_timing_record_names_the_cpu_model_not_only_the_architecture(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n")
    real_path = tasks.Path
    monkeypatch.setattr(tasks, "Path", lambda p, *a: cpuinfo if p == "/proc/cpuinfo" else real_path(p, *a))
    assert tasks.processor_name() == "AMD EPYC 7B13"
    cpuinfo.unlink()                                   # no /proc (macOS, Windows): the platform's word
    import platform
    assert tasks.processor_name() == (platform.processor() or platform.machine())


@pytest.mark.parametrize("store", [False, True])
def test_timing_keeps_the_timed_run_as_stored_outputs_only_with_store(monkeypatch, tmp_path, store):
    page = tmp_path / "chapters" / "page.ipynb"
    page.parent.mkdir()
    stale = {"cells": [{"cell_type": "code", "source": ["1 + 1"], "metadata": {}, "outputs": []}],
             "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    page.write_text(json.dumps(stale))
    times = tmp_path / "times.json"

    def execute(*argv, **env):      # what nbconvert writes: outputs (a machine path in one) and stamps
        out_dir = Path(argv[argv.index("--output-dir") + 1])
        ran = json.loads(page.read_text())
        ran["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                       "text": ["/home/ana/.venv/lib/python3.13/site-packages/x.py\n"]}]
        ran["cells"][0]["metadata"]["execution"] = {"iopub.status.busy": "2026-12-07T10:00:00",
                                                    "iopub.status.idle": "2026-12-07T10:00:42"}
        (out_dir / "page.ipynb").write_text(json.dumps(ran))

    def smoke(path, **env):         # conftest.py records the smoke time into the same file
        times.write_text(json.dumps({"smoke": {path: 3.0}}))

    for name, value in (("ROOT", tmp_path), ("TIMES", times), ("setup", lambda: None), ("run", execute),
                        ("refuse_if_busy", lambda allowed: None), ("test", smoke)):
        monkeypatch.setattr(tasks, name, value)
    tasks.time_notebooks("chapters/page.ipynb", *(["--store"] if store else []))
    record = json.loads(times.read_text())
    assert record["standard"] == {"chapters/page.ipynb": 42.0} and record["smoke"] == {"chapters/page.ipynb": 3.0}
    outputs = json.loads(page.read_text())["cells"][0]["outputs"]
    if store:     # the timed run, its machine's folders scrubbed as `execute` does
        assert outputs and "/home/ana" not in "".join(outputs[0]["text"])
    else:
        assert outputs == []


def test_scrub_drops_the_environment_notices_from_stderr_and_keeps_the_rest(tmp_path):
    notice = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              "I0000 00:00:1796627330.437629   31607 cudart_stub.cc:31] Could not find cuda drivers on "
              "your machine, GPU will not be used.\n")
    outputs = [{"output_type": "stream", "name": "stderr", "text": [notice]},
               {"output_type": "stream", "name": "stdout", "text": ["replicas in sync: 2\n"]},
               {"output_type": "stream", "name": "stderr", "text": notice + "UserWarning: kept\n"}]
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}], "metadata": {},
                                "nbformat": 4, "nbformat_minor": 5}))
    tasks.scrub_outputs(path)
    kept = json.loads(path.read_text())["cells"][0]["outputs"]
    assert [(o["name"], "".join(o["text"])) for o in kept] == [("stdout", "replicas in sync: 2\n"),
                                                               ("stderr", "UserWarning: kept\n")]
