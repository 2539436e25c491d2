"""The package's own code, shown on a chapter's page.

A chapter that teaches a model shows it with ``mm.source.show(dk.FormulaNet)``: the code is read
from ``mmlearn`` when the cell runs, never copied into the notebook, so the page cannot drift
from the code it trains. The stored plain-text output is the source itself, so a test run of
the notebook (nbval) fails when the package's code changed and the page was not re-run.
"""

from __future__ import annotations

import inspect
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


class Source:
    """A class or function of ``mmlearn`` as highlighted code (Markdown) and as plain text."""

    def __init__(self, obj):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            raise TypeError(f"mm.source.show takes a class or function, got {type(obj).__name__} "
                            f"{obj!r:.60}; pass the object itself, e.g. mm.source.show(dt.FormulaNet)")
        file = Path(inspect.getsourcefile(obj)).resolve()
        if PACKAGE not in file.parents:
            raise ValueError(f"{obj.__qualname__} is defined in {file.name}, not in mmlearn; "
                             "the book shows only its own package's code")
        lines, first = inspect.getsourcelines(obj)
        self.text = "".join(lines)
        self.where = (f"`{file.relative_to(PACKAGE.parent).as_posix()}`, "
                      f"lines {first} to {first + len(lines) - 1}")

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return f"From {self.where}:\n\n```python\n{self.text}```\n"


def show(obj) -> Source:
    """The source of ``obj`` (a class or function of mmlearn), displayed as the cell's result."""
    return Source(obj)
