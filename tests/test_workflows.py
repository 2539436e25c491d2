"""The GitHub workflows are valid (schema-checked offline) and do what the README promises."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECKER = Path(sys.executable).with_name("check-jsonschema")


def lint(*paths):
    return subprocess.run([str(CHECKER), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_workflows_pass_the_schema_check():
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    shutil.copy(ROOT / ".github" / "workflows" / "book.yml", broken)
    broken.write_text(broken.read_text().replace("runs-on:", "runs_on:"))
    assert lint(broken).returncode != 0


def load(name):
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_book_is_built_and_published_on_push_to_main():
    wf = load("book.yml")
    assert wf[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as True
    steps = wf["jobs"]["build"]["steps"]
    assert any("python3 tasks.py book" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact") and
               s["with"]["path"] == "_build/html" for s in steps)
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in wf["jobs"]["deploy"]["steps"])


def test_full_profile_runs_on_a_gpu_runner_on_a_schedule_and_keeps_what_it_executed():
    wf = load("gpu-full.yml")
    assert "schedule" in wf[True]
    job = wf["jobs"]["notebooks"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    assert job["env"]["MMLEARN_PROFILE"] == "full"
    assert job["env"]["MMLEARN_GPU"] == "1", "GPU builds of TensorFlow need the gpu extra"
    steps = job["steps"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    runs = [s.get("run", "") for s in steps]
    assert any("tasks.py gpu-check" in r for r in runs)
    executed = next(r for r in runs if "tasks.py execute --into" in r).split("--into")[1].split()[0]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == executed
    assert any("tasks.py test chapters/" in r for r in runs)


def test_the_gpu_extra_is_tensorflows_cuda_build():
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("tensorflow[and-cuda]") for r in extras["gpu"])


def test_standard_profile_is_checked_under_nbval_on_a_schedule():
    wf = load("standard.yml")
    assert "schedule" in wf[True]
    runs = [s.get("run", "") for s in wf["jobs"]["notebooks"]["steps"]]
    assert any(r.strip() == "python3 tasks.py standard" for r in runs)


def test_the_standard_command_runs_nbval_with_the_standard_profile(monkeypatch):
    sys.path.insert(0, str(ROOT))
    import tasks
    calls = []
    monkeypatch.setattr(tasks, "setup", lambda: None)
    monkeypatch.setattr(tasks, "run", lambda *args, **env: calls.append((args, env)))
    monkeypatch.setenv("MMLEARN_PROFILE", "smoke")
    tasks.standard()
    (args, env), = calls
    assert env["MMLEARN_PROFILE"] == "standard"
    assert "--nbval" in args and args[-1] == "chapters/"
