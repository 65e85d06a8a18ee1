"""Every values key has a description in values.schema.json, and charts/hwcap-operator/README.md is exactly what
those descriptions and values.yaml generate (``python -m hwcap_dev.chart_readme --write``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from chartlib import CHART_DIR

from hwcap_dev import chart_readme


def _leaves(values: Any, path: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for key, sub in values.items() for leaf in _leaves(sub, f"{path}.{key}" if path else key)]
    return [path]


def test_every_key_of_the_schema_has_a_description() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    documented = list(chart_readme.rows(schema))
    assert len(documented) > 100
    undescribed = [path for path, node in documented if not str(node.get("description", "")).strip()]
    assert undescribed == []


def test_every_key_of_values_yaml_has_a_row() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    rows = {path for path, _ in chart_readme.rows(json.loads((CHART_DIR / "values.schema.json").read_text()))}
    # A leaf is documented by its own row or by the row of the Kubernetes-typed value that contains it.
    missing = [leaf for leaf in _leaves(values) if not any(leaf == r or leaf.startswith(f"{r}.") for r in rows)]
    assert missing == []


def test_the_chart_readme_is_generated_from_the_schema(tmp_path: Path, monkeypatch: Any) -> None:
    assert chart_readme.main(["--check"]) == 0, "run `python -m hwcap_dev.chart_readme --write`"
    text = (CHART_DIR / "README.md").read_text()
    assert "| `operator.resyncSeconds` | number | `300` |" in text
    stale = tmp_path / "README.md"
    stale.write_text(text.replace("`300`", "`301`"))
    monkeypatch.setattr(chart_readme, "README", stale)
    assert chart_readme.main(["--check"]) == 1
    assert chart_readme.main(["--write"]) == 0 and stale.read_text() == text
