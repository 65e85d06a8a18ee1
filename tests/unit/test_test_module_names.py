"""pytest imports test modules of directories without ``__init__.py`` by their basename (rootdir-relative
"rootdir/conftest" mode): two such files with one name abort the whole run at collection ("import file
mismatch"), which once reached CI. Every test module name must therefore be unique across those directories."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_modules_outside_packages_have_unique_names() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
