"""Notebooks are stored with their outputs: nbval only compares cells that were executed, and
the rendered book shows only what is stored."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IGNORING = {"nbval-ignore-output", "nbval-skip"}


def code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "chapters/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_saved_executed_in_order(path):
    cells = code_cells(path)
    assert cells, "no code cells"
    counts = [c.get("execution_count") for c in cells]
    missing = [i for i, n in enumerate(counts) if n is None]
    assert not missing, (f"code cells {missing} were saved without being executed; refresh the "
                         f"stored outputs with `python3 tasks.py execute {path.relative_to(ROOT)}`")
    assert counts == sorted(counts), "cells were executed out of order; re-run the notebook top to bottom"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_mostly_compared_by_nbval(path):
    cells = code_cells(path)
    ignored = [c for c in cells if IGNORING & set(c.get("metadata", {}).get("tags", []))]
    assert len(ignored) <= len(cells) / 2, f"{len(ignored)} of {len(cells)} code cells escape nbval"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stored_errors_unless_meant(path):
    for cell in code_cells(path):
        tags = cell.get("metadata", {}).get("tags", [])
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        assert not errors or "raises-exception" in tags, "".join(cell["source"])[:200]


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert str(path.relative_to(ROOT).with_suffix("")) in toc, f"{path} is not in _toc.yml"


CHAPTERS = [p for p in NOTEBOOKS if p.parent.name in ("part1", "part2")]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_ends_with_summary_and_a_checked_exercise(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    headings = {line.lstrip("#").strip() for c in cells if c["cell_type"] == "markdown"
                for line in "".join(c["source"]).splitlines() if line.startswith("#")}
    assert {"Summary", "Exercises"} <= headings, "a chapter needs '## Summary' and '## Exercises'"
    checked = [i for i, c in enumerate(cells[:-1])
               if "hide-input" in c.get("metadata", {}).get("tags", [])
               and cells[i + 1]["cell_type"] == "code" and "assert" in "".join(cells[i + 1]["source"])]
    assert checked, ("at least one exercise needs a solution cell tagged hide-input followed by a "
                     "cell that asserts the answer")



# what a folder of the machine that ran a notebook looks like in its outputs
MACHINE_PATHS = re.compile(r"/root/|/home/\w|/Users/\w|/work/|\.pyenv/|\.venv/|[\w.]/(?:site|dist)-packages/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stored_output_names_a_folder_of_the_machine_that_ran_it(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            shown = {k: v for k, v in output.items() if k != "data"}
            shown["data"] = {k: v for k, v in output.get("data", {}).items() if not k.startswith("image/")}
            found = MACHINE_PATHS.search(json.dumps(shown))
            assert not found, (f"cell {i} stores a path of the machine that ran it ({found.group(0)!r}...): "
                               f"re-run `python3 tasks.py execute {path.relative_to(ROOT)}`, which folds "
                               "such paths by the 'path:' rules of tests/nbval_sanitize.cfg")


def test_nbval_compares_outputs_without_the_environment_notices():
    """conftest.py removes the sanitiser's "drop: ..." notices before nbval compares a cell: a
    stderr holding only TensorFlow's no-driver notice counts as no output at all."""
    from nbformat import v4
    from nbval import plugin

    notice = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              "I0000 00:00:17.88 12161 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.\n")
    outputs = [v4.new_output("stream", name="stderr", text=notice), v4.new_output("stream", name="stdout", text="2\n"),
               v4.new_output("stream", name="stderr", text="E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory\n")]
    kept = plugin.coalesce_streams(outputs)   # nbval merges a cell's stderr into its first stderr
    assert [(o.name, o.text) for o in kept] == [("stderr", "E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory\n"),
                                                ("stdout", "2\n")]
    only_notice = [v4.new_output("stream", name="stderr", text=notice), v4.new_output("stream", name="stdout", text="2\n")]
    assert [o.name for o in plugin.coalesce_streams(only_notice)] == ["stdout"]
