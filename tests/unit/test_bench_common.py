"""The benchmark's own arithmetic: percentiles and ratios printed by ``make bench`` must be right.

Expected values are worked out by hand (closest-rank interpolation as numpy's default ``linear`` method).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.common import Figure, format_table, percentile, ratio, write_results


def test_percentile_interpolates_between_closest_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 99) == pytest.approx(3.97)


def test_percentile_refuses_no_samples_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_is_none_without_a_usable_baseline() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(3.0, 0.0) is None
    assert Figure("x", 3.0, "s").ratio is None
    assert Figure("x", 3.0, "s", baseline=6.0).ratio == 0.5


def test_table_shows_ratio_and_verdict() -> None:
    table = format_table([Figure("resync", 2.5, "s", baseline=1.25, target="< 5 s", met=True)])
    row = table.splitlines()[1]
    assert "2.500 s" in row and "2.00" in row and row.endswith("< 5 s met")


def test_results_of_several_benchmarks_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01.json"
    write_results("operator", [Figure("a", 1.0, "s")], path=path)
    write_results("exec", [Figure("b", 2.0, "ms", baseline=1.0)], {"runs": 10}, path=path)
    data = json.loads(path.read_text())
    assert data["operator"]["figures"][0]["name"] == "a"
    assert data["exec"]["figures"][0]["ratio"] == 2.0 and data["exec"]["runs"] == 10
    assert data["machine"]["nproc"]
