"""The reliability table is rendered from every producer's result files (any test may add a class), shows losses
as measured, and refuses a malformed result instead of dropping it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwcap_dev import reliability


def test_results_of_several_producers_become_one_table_with_their_losses(tmp_path: Path) -> None:
    reliability.record("operator SIGKILL", "operator", 50, {"mask changed": 0, "pods unmasked": 0}, directory=tmp_path)
    reliability.record("body of 2 MiB", "webhook", 1000, {"HTTP 500": 3}, "three", directory=tmp_path)
    doc = f"intro\n{reliability.BEGIN}\nold\n{reliability.END}\ntail\n"
    out = reliability.render_into(doc, reliability.render_table(reliability.load(tmp_path)))
    assert out.startswith("intro\n") and out.endswith(f"{reliability.END}\ntail\n") and "old" not in out
    assert "| operator | operator SIGKILL | 50 | mask changed: 0, pods unmasked: 0 |" in out
    assert "| webhook | body of 2 MiB | 1000 | HTTP 500: **3** |" in out
    assert "2 classes, 1050 trials, 3 losses." in out


def test_a_malformed_result_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"class": "x"}')
    with pytest.raises(ValueError, match=r"broken\.json"):
        reliability.load(tmp_path)


def test_render_exits_non_zero_when_something_was_lost(tmp_path: Path) -> None:
    reliability.record("c", "a", 1, {"lost": 1}, directory=tmp_path)
    doc = tmp_path / "doc.md"
    doc.write_text(f"{reliability.BEGIN}\n{reliability.END}\n")
    assert reliability.main(["render", "--results", str(tmp_path), "--doc", str(doc)]) == 1
    assert "lost: **1**" in doc.read_text()
