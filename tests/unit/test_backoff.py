"""Failed reconciles back off exponentially with full jitter: no retry storm against a restarting apiserver, and
replicas/domains that failed together do not retry in lock-step."""

from __future__ import annotations

import statistics

from hwcap_operator.kube.handlers import retry_delay


def test_no_failure_no_delay_and_each_delay_stays_under_its_doubling_bound_and_the_cap() -> None:
    assert retry_delay(0) == 0.0
    for failures in range(1, 30):
        bound = min(60.0, 0.5 * 2**failures)
        assert all(0.0 <= retry_delay(failures) <= bound for _ in range(200))


def test_delays_grow_with_failures_and_are_spread_not_fixed() -> None:
    means = [statistics.mean(retry_delay(n) for _ in range(2000)) for n in (1, 3, 5)]
    assert means[0] < means[1] < means[2]  # ~0.5, ~2, ~8 s
    assert len({round(retry_delay(4), 3) for _ in range(50)}) > 40  # jitter: no two replicas in step
