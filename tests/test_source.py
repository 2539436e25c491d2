import json
import re
from pathlib import Path

import pytest

from mmlearn import metrics, source
from mmlearn.models import deconv

ROOT = Path(__file__).resolve().parents[1]


def test_show_gives_the_package_code_as_text_and_highlighted_markdown():
    shown = source.show(metrics.accuracy)
    assert repr(shown).startswith("def accuracy(") and repr(shown).endswith("\n")
    markdown = shown._repr_markdown_()
    assert markdown.startswith("From `mmlearn/metrics.py`, lines ") and "```python\ndef accuracy(" in markdown
    first, last = map(int, re.search(r"lines (\d+) to (\d+)", markdown).groups())
    lines = (ROOT / "mmlearn/metrics.py").read_text().splitlines(keepends=True)
    assert "".join(lines[first - 1:last]) == repr(shown)


def test_nbval_compares_the_shown_code_but_not_where_it_sits_in_its_file():
    import configparser
    rules = configparser.ConfigParser(interpolation=None)
    rules.read(ROOT / "tests/nbval_sanitize.cfg")
    (name,) = [n for n in rules.sections() if n.startswith("mm.source.show")]
    rule = rules[name]

    def sanitized(shown):
        return re.sub(rule["regex"], rule["replace"], shown._repr_markdown_())

    moved = source.show(metrics.accuracy)
    moved.where = moved.where.replace("lines ", "lines 1")
    assert sanitized(moved) == sanitized(source.show(metrics.accuracy))    # lines shifted: equal
    assert "lines N to M" in sanitized(moved) and "def accuracy(" in sanitized(moved)
    assert sanitized(source.show(metrics.accuracy)) != sanitized(source.show(metrics.recall_at_k))


def test_show_refuses_what_is_not_the_package_own_class_or_function():
    with pytest.raises(TypeError, match="class or function"):
        source.show(deconv.FormulaNet())
    with pytest.raises(ValueError, match="not in mmlearn"):
        source.show(json.dumps)
