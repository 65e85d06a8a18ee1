"""docs/runtimes.md's coverage table says what the code does: every runtime knob is a row, verified by a real test.

The table is the user's answer to "which runtimes does my domain keep off a dropped feature"; it must not
promise a knob the webhook does not set, nor miss one it does.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwcap_operator.admission.fallbacks import FALLBACK_KINDS
from hwcap_operator.features.knobs import RUNTIME_KNOBS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "runtimes.md"


def _rows() -> list[list[str]]:
    section = DOC.read_text(encoding="utf-8").split("## Coverage table", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("| ---")]  # fmt: skip
    assert rows[0][:5] == ["Runtime", "Knob the webhook sets", "Arch", "Domain opt-in",
                           "Verified by (what the runtime itself reports)"]  # fmt: skip
    return rows[1:]


def _kind(cell: str) -> str | None:
    found = re.findall(r"`(\w+)`", cell)
    return found[0] if found else None


def test_every_knob_of_the_code_has_a_row_per_arch() -> None:
    documented = {(_kind(r[3]), arch.strip()) for r in _rows() for arch in r[2].split(",")}
    for runtime, kind, arches, _ in RUNTIME_KNOBS:
        for arch in arches:
            assert (kind, arch) in documented, f"{runtime}: {kind} on {arch} has no row in {DOC.name}"


def test_every_row_with_a_knob_is_a_real_kind_verified_by_an_existing_runtime_test() -> None:
    table = {(kind, arch) for _, kind, arches, _ in RUNTIME_KNOBS for arch in arches}
    for row in _rows():
        kind = _kind(row[3])
        if kind is None:
            assert "uncovered" in row[4] or "the mask itself" in row[4], row[0]
            continue
        assert kind in FALLBACK_KINDS, row[0]
        for arch in row[2].split(","):
            assert (kind, arch.strip()) in table, f"{row[0]}: the code has no {kind} knob on {arch}"
        tests = re.findall(r"`(tests/runtimes/test_\w+\.py)`", row[4])
        assert tests, f"{row[0]}: no verifying test named"
        for test in tests:
            assert re.search(r"^def test_", (ROOT / test).read_text(encoding="utf-8"), re.MULTILINE), test
