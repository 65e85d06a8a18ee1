"""Render CLI results as a table, JSON or YAML, so every verb is both readable and scriptable."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TextIO

import yaml

OutputFormat = Literal["table", "json", "yaml"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "yaml")


def emit(document: Mapping[str, Any], table: str, fmt: OutputFormat, out: TextIO = sys.stdout) -> None:
    """Write ``document`` as JSON/YAML, or the pre-rendered human ``table`` text."""
    if fmt == "json":
        json.dump(document, out, indent=2, sort_keys=False)
        out.write("\n")
    elif fmt == "yaml":
        yaml.safe_dump(dict(document), out, sort_keys=False, default_flow_style=False)
    else:
        out.write(table if table.endswith("\n") else table + "\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A kubectl-style table: upper-case headers, columns padded to the widest cell, three spaces apart."""
    cells = [[str(h).upper() for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in value) if value else "<none>"
    return str(value)
