"""docs/metrics.md documents exactly the metrics the code registers, with their types and label names.

The expectation comes from the live registries (the operator's ``OperatorMetrics`` and the agent's
``AgentMetrics``), the observation from the page's tables, so adding, renaming or relabelling a metric without
updating the page fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from hwcap_operator.agent.run import AgentMetrics
from hwcap_operator.kube.metrics import OperatorMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_ROW = re.compile(
    r"^\|\s*`(?P<name>[a-z_:][a-z0-9_:]*)`\s*\|\s*(?P<type>\w+)\s*\|(?P<labels>[^|]*)\|(?P<meaning>[^|]+)\|"
)


@dataclass(frozen=True)
class Documented:
    name: str
    type: str
    labels: tuple[str, ...]
    meaning: str


def documented(text: str) -> dict[str, Documented]:
    """Every metric row of the page's tables: ``| `name` | type | `label`, `label` | meaning |``."""
    rows: dict[str, Documented] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        name = match["name"]
        assert name not in rows, f"{name} is documented twice"
        labels = tuple(re.findall(r"`([a-z_]+)`", match["labels"]))
        rows[name] = Documented(name, match["type"], labels, match["meaning"].strip())
    return rows


def exposition_name(family_name: str, family_type: str) -> str:
    """The name a user queries: counters carry ``_total`` in the exposition, the family name does not."""
    return f"{family_name}_total" if family_type == "counter" else family_name


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, label names) for every metric the operator and the agent register."""
    operator = OperatorMetrics()
    agent = AgentMetrics(CollectorRegistry())
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for holder in (operator, agent):
        wrappers = [v for v in vars(holder).values() if isinstance(v, MetricWrapperBase)]
        # Label names are not exposed publicly before a child exists; _labelnames is prometheus-client's field.
        labels_by_family = {w._name: tuple(w._labelnames) for w in wrappers}
        for family in holder.registry.collect():
            found[exposition_name(family.name, family.type)] = (family.type, labels_by_family[family.name])
    return found


def test_the_doc_parser_reads_a_row() -> None:
    row = documented("| `hwcap_x_total` | counter | `kind`, `result` | what it counts |")
    assert row == {"hwcap_x_total": Documented("hwcap_x_total", "counter", ("kind", "result"), "what it counts")}
    assert documented("| `hwcap_y_seconds` | histogram | | time |")["hwcap_y_seconds"].labels == ()


def test_every_registered_metric_is_documented_and_nothing_else() -> None:
    docs = documented(DOC.read_text())
    code = registered()
    assert len(code) >= 13  # the operator's eleven and the agent's two, at the time of writing
    assert sorted(code) == sorted(docs), f"undocumented: {sorted(set(code) - set(docs))}; " \
        f"documented but not registered: {sorted(set(docs) - set(code))}"  # fmt: skip


@pytest.mark.parametrize("name", sorted(registered()))
def test_type_and_labels_match(name: str) -> None:
    doc = documented(DOC.read_text())[name]
    kind, labels = registered()[name]
    assert doc.type == kind, f"{name}: documented as {doc.type}, registered as {kind}"
    assert set(doc.labels) == set(labels), f"{name}: documented labels {doc.labels}, registered {labels}"
    assert len(doc.meaning) > 20, f"{name}: say what it means"
