"""Reading files of exact pins (constraints.txt, tests/colab/colab-versions.txt) for the tests."""
import re
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version


def read_pins(path: Path, local_versions: bool = True) -> dict[str, Version]:
    """``{canonical name: version}`` of a file of ``NAME==VERSION`` lines (``#`` comments and blank
    lines skipped). Fails on any other line, on a name given twice and, unless
    ``local_versions``, on a ``+local`` suffix, which PyPI does not serve."""
    version = r"[0-9][0-9A-Za-z.+!\-]*" if local_versions else r"[0-9][0-9A-Za-z.!\-]*"
    found = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(rf"([A-Za-z0-9_.\-]+)==({version})", line.strip())
        assert m, f"{path.name}: {line!r} is not an exact pin NAME==VERSION" + (
            "" if local_versions else " of PyPI (no +local suffix, no URL)")
        name = canonicalize_name(m.group(1))
        assert name not in found, f"{path.name} lists {m.group(1)} twice"
        found[name] = Version(m.group(2))
    return found
