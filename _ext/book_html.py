"""Small fixes to the book's HTML, found by the browser test (tests/test_browser.py).

* MathJax is served from the book itself, so formulas render without a network connection.
  Sphinx loads it from a CDN by default; the pinned package ``django-static-mathjax`` ships
  MathJax 3's files, which are copied into ``_static/`` and used instead.
* sphinx-thebe registers its configuration script twice under jupyter-book 1.0, and the second
  copy fails in the browser ("Identifier 'THEBE_JS_URL' has already been declared"). Each page
  keeps one copy of every script.
* Without an explicit colour mode the theme logs "Got invalid theme mode" to the console on a
  reader's first visit; the mode is set to ``auto`` (follow the reader's system setting).
"""

import importlib.util
from pathlib import Path


def _configure(app, config):
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package django-static-mathjax is not installed; install the book's "
                           "environment with `python3 tasks.py book`")
    static = Path(list(spec.submodule_search_locations)[0]) / "static"  # holds mathjax/es5/
    config.html_static_path.append(str(static))
    config.mathjax_path = "mathjax/es5/tex-mml-chtml.js"


def _fix_page(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", None) or "",  # inline scripts: None or ""
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _fix_page, priority=900)  # after the themes' own handlers
    return {"parallel_read_safe": True, "parallel_write_safe": True}
