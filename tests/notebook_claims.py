"""A dry run's rule for the notebooks' checks of results (used by conftest.py under MMLEARN_DRY_RUN=1).

A dry run trains a few steps, so the asserts that check the book's numbers against thresholds
per profile cannot hold; this module rewrites a cell so that they are evaluated and reported but
not enforced, while every other assert stays a check.
"""
import ast
import io
import re
import tokenize

CLAIM_MARK = re.compile(r"#\s*claim\b")


def _claim_lines(source: str) -> set[int]:
    """The lines of ``source`` that carry a ``# claim`` comment."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return set()
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT and CLAIM_MARK.match(t.string)}


def _mentions(node: ast.AST, names: set[str]) -> bool:
    """Whether ``node`` reads one of ``names`` or calls something named ``get_profile``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in names:
            return True
        if isinstance(sub, ast.Call):
            func = sub.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == "get_profile":
                return True
    return False


def relax_profile_claims(source: str, profile_names: set[str] | None = None) -> str:
    """``source`` with every assert about the profile's results evaluated but not enforced.

    A dry run trains a few steps, so the checks of the book's numbers, whose thresholds depend
    on the profile (``{"smoke": ..., "standard": ..., "full": ...}[mm.get_profile()]``), cannot
    hold. An assert counts as such a claim when its condition calls ``get_profile()``, reads a
    name set from it (directly or through other such names), or sits in an ``if`` or ``while``
    whose test does. A check of a trained result with no threshold to vary by profile (fusion
    beats either modality alone, say) is marked by a ``# claim`` comment on one of its lines.
    Each claim still runs, so an error in computing it (a missing key, a wrong
    shape, a name that does not exist) still fails; only a false result is printed instead of
    raised. Every other assert (shapes, parameter counts, exact numerics, sizes) stays as it is.
    Source that is not plain Python (cell magics) is returned unchanged.

    ``profile_names``, if given, holds the names earlier cells set from the profile (such as
    ``profile = mm.get_profile()``); the names this cell sets are added to it, so a notebook's
    cells passed in order share them.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    marked = _claim_lines(source)
    tainted = set() if profile_names is None else profile_names
    changed = True
    while changed:  # names set from the profile, and from those names, to a fixed point
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) \
                    and node.value is not None and _mentions(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and name.id not in tainted:
                            tainted.add(name.id)
                            changed = True

    class Relax(ast.NodeTransformer):
        depth = 0  # inside how many profile-dependent ifs and whiles

        def visit_If(self, node):
            return self._branch(node)

        def visit_While(self, node):
            return self._branch(node)

        def _branch(self, node):
            dependent = _mentions(node.test, tainted)
            self.depth += dependent
            self.generic_visit(node)
            self.depth -= dependent
            return node

        def visit_Assert(self, node):
            lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            if not (self.depth or _mentions(node.test, tainted) or lines & marked):
                return node
            note = ast.parse(f"print('dry run, claim not enforced after a few steps:', "
                             f"{ast.unparse(node.test)!r})").body[0]
            return ast.copy_location(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=node.test),
                                            body=[note], orelse=[]), node)

    return ast.unparse(ast.fix_missing_locations(Relax().visit(tree)))
