"""Serve MathJax from the book itself, so formulas render without a network connection.

Sphinx loads MathJax from a CDN by default. The pinned package ``django-static-mathjax`` ships
MathJax 3's files; this extension copies them into the built book's ``_static/`` and points
``mathjax_path`` at the local copy.
"""

import importlib.util
from pathlib import Path


def _use_local_mathjax(app, config):
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package django-static-mathjax is not installed; install the book's "
                           "environment with `python3 tasks.py book`")
    static = Path(list(spec.submodule_search_locations)[0]) / "static"  # holds mathjax/es5/
    config.html_static_path.append(str(static))
    config.mathjax_path = "mathjax/es5/tex-mml-chtml.js"


def setup(app):
    app.connect("config-inited", _use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
