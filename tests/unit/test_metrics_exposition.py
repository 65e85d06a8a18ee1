"""/metrics speaks OpenMetrics to a scraper that asks for it (Accept header) and the 0.0.4 text format otherwise;
the per-domain gauges and hwcap_build_info are in both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from importlib import metadata

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tests.support.ports import free_port

from hwcap_operator.domain import api
from hwcap_operator.kube import http_server
from hwcap_operator.kube.metrics import OperatorMetrics

#: What Prometheus 2.x/3.x sends when it prefers OpenMetrics (scrape_protocols default).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def _condition(ctype: str, status: str, reason: str) -> api.Condition:
    return api.Condition(type=ctype, status=status, reason=reason, message="m",
                         last_transition_time=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip


async def _scrape(metrics: OperatorMetrics, accept: str | None) -> tuple[str, str]:
    port = free_port()
    runner = await http_server.start_site(http_server.health_app(metrics, ready=lambda: True), "127.0.0.1", port, None)
    try:
        headers = {"Accept": accept} if accept is not None else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as r,
        ):
            assert r.status == 200
            return r.headers["Content-Type"], await r.text()
    finally:
        await runner.cleanup()


@pytest.fixture
def metrics() -> OperatorMetrics:
    m = OperatorMetrics()
    m.publish_conditions(
        "good", [_condition("Ready", "True", "MaskPublished"), _condition("MaskValid", "True", "Valid")]
    )
    m.publish_conditions("bad", [_condition("Ready", "False", "MaskRefused"),
                                 _condition("MaskValid", "False", "SecurityFeatureHidden")])  # fmt: skip
    return m


def _samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}  # type: ignore[attr-defined]


def test_openmetrics_when_the_scraper_asks_for_it(metrics: OperatorMetrics) -> None:
    content_type, body = asyncio.run(_scrape(metrics, PROMETHEUS_ACCEPT))
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    samples = _samples(parse_openmetrics(body))  # the strict OpenMetrics parser accepts it
    assert samples[("hwcap_domain_ready", (("domain", "good"),))] == 1
    assert samples[("hwcap_domain_ready", (("domain", "bad"),))] == 0
    assert samples[("hwcap_domain_mask_refused", (("domain", "bad"),))] == 1
    assert samples[("hwcap_domain_mask_refused", (("domain", "good"),))] == 0


@pytest.mark.parametrize("accept", [None, "text/plain", "*/*"])
def test_prometheus_text_format_otherwise(metrics: OperatorMetrics, accept: str | None) -> None:
    content_type, body = asyncio.run(_scrape(metrics, accept))
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
    assert "# EOF" not in body
    samples = _samples(parse_text(body))
    [(labels, value)] = [(k[1], v) for k, v in samples.items() if k[0] == "hwcap_build_info"]
    assert value == 1 and dict(labels)["version"] == metadata.version("hwcap-operator")


def test_a_deleted_domain_leaves_no_ready_series(metrics: OperatorMetrics) -> None:
    metrics.forget_domain("bad")
    _, body = asyncio.run(_scrape(metrics, None))
    assert 'domain="bad"' not in body and 'domain="good"' in body
