"""What every benchmark shares: percentiles, ratios to a same-run baseline, the machine, the results file.

Pure helpers (no cluster, no clock) so ``tests/unit/test_bench_common.py`` can check them; the benchmarks
print rows of :class:`Figure` and :func:`write_results` merges them into ``bench/results/<date>.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``; None when the baseline is zero or missing (nothing to compare against)."""
    if not baseline or math.isnan(baseline):
        return None
    return value / baseline


@dataclass(frozen=True)
class Figure:
    """One measured number, its unit, the baseline it is compared with (same run), and the target if any."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.baseline is None else ratio(self.value, self.baseline)


def format_table(figures: Iterable[Figure]) -> str:
    """A fixed-width table: name, value with unit, ratio to the baseline, target and verdict."""
    lines = [f"{'measurement':64} {'value':>14} {'x baseline':>11}  target"]
    for f in figures:
        r = f.ratio
        verdict = "" if f.met is None else ("met" if f.met else "NOT met")
        shown = f"{f.value:,.3f} {f.unit}" if abs(f.value) < 1000 else f"{f.value:,.0f} {f.unit}"
        lines.append(f"{f.name:64} {shown:>14} {'' if r is None else f'{r:11.2f}':>11}  {f.target} {verdict}".rstrip())
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Where the numbers come from: CPU count, CPU model, kernel, Python."""
    model = platform.processor() or "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^(model name|Model|cpu model)\s*:\s*(.+)$", text, re.M)
        if found:
            model = found.group(2).strip()
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version()}  # fmt: skip


def results_path(day: dt.date | None = None, directory: Path = RESULTS_DIR) -> Path:
    return directory / f"{(day or dt.datetime.now(dt.UTC).date()).isoformat()}.json"


def write_results(section: str, figures: Sequence[Figure], extra: Mapping[str, Any] | None = None,
                  path: Path | None = None) -> Path:  # fmt: skip
    """Merge one benchmark's figures into today's results file (other sections are kept)."""
    target = path or results_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if target.exists():
        try:
            data = json.loads(target.read_text())
        except ValueError:
            data = {}
    data["machine"] = machine()
    # The load when the section finished: a figure taken while other jobs shared the cores reads differently.
    data[section] = {"figures": [asdict(f) | {"ratio": f.ratio} for f in figures],
                     "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()], **(extra or {})}  # fmt: skip
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return target
