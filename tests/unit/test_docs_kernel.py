"""docs/kernel.md is where kernel facts are cited from: nothing shipped points at documents outside the
repository, and every ``kernel.md#<anchor>`` reference in the code, tests and docs names an anchor that exists.

Why a test: users read condition messages, CLI output and the docs; a citation they cannot open (or an anchor
renamed away) is a broken promise that no other test would notice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KERNEL_MD = REPO / "docs" / "kernel.md"
#: What users get: the product, the chart, the docs and the README.
SHIPPED = ("src", "charts", "docs", "README.md")
#: Where kernel.md anchors are cited.
CITING = ("src", "dev", "tests", "docs")
#: Citations of documents that are not in this repository (spelled in pieces so this file does not match).
OUTSIDE_DOCUMENTS = ("kernel" + "-facts", "shared" + "/reference", ".." + "/shared/")
_SKIP_DIRS = {"__pycache__", "build", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
_ANCHOR_DEF = re.compile(r'<a id="([^"]+)"></a>')
_CITATION = re.compile(r"kernel\.md#([A-Za-z0-9_-]+)")
_LOCAL_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")


def _text_files(*roots: str) -> Iterator[tuple[Path, str]]:
    for root in roots:
        top = REPO / root
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in paths:
            rel_parts = path.relative_to(REPO).parts
            if not path.is_file() or any(p in _SKIP_DIRS or p.endswith(".egg-info") for p in rel_parts):
                continue
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binaries (a built hwcap-exec, images)


def _anchors() -> set[str]:
    return set(_ANCHOR_DEF.findall(KERNEL_MD.read_text(encoding="utf-8")))


def _where(path: Path, text: str, offset: int) -> str:
    return f"{path.relative_to(REPO)}:{text.count(chr(10), 0, offset) + 1}"


def test_nothing_shipped_cites_a_document_outside_the_repository() -> None:
    found = [
        f"{_where(path, text, m.start())}: {m.group(0)}"
        for path, text in _text_files(*SHIPPED)
        for needle in OUTSIDE_DOCUMENTS
        for m in re.finditer(re.escape(needle), text, flags=re.IGNORECASE)
    ]
    assert not found, "cite docs/kernel.md#<anchor> instead:\n" + "\n".join(found)


def test_every_kernel_md_citation_names_an_existing_anchor() -> None:
    anchors = _anchors()
    cited: list[str] = []
    broken = []
    for path, text in _text_files(*CITING):
        for m in _CITATION.finditer(text):
            cited.append(m.group(1))
            if m.group(1) not in anchors:
                broken.append(f"{_where(path, text, m.start())}: #{m.group(1)}")
    assert not broken, "no such anchor in docs/kernel.md:\n" + "\n".join(broken)
    assert len(set(cited)) >= 20  # the code does cite kernel.md: the pattern is not silently matching nothing


def test_links_inside_kernel_md_resolve() -> None:
    text = KERNEL_MD.read_text(encoding="utf-8")
    anchors = _anchors()
    broken = [f"{_where(KERNEL_MD, text, m.start())}: #{m.group(1)}" for m in _LOCAL_LINK.finditer(text)
              if m.group(1) not in anchors]  # fmt: skip
    assert not broken, "\n".join(broken)
