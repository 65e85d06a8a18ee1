"""Webhook benchmark (issue 12): the real webhook against a bare aiohttp echo, in the same run, on this machine.

Targets, each a server process of its own over TLS on 127.0.0.1 (``tests/support/webhook_server.py``):

- ``echo``: bare aiohttp (reads the body, answers one fixed AdmissionReview) — the baseline;
- ``mutated``: the product's webhook app and decider, an in-memory view holding one Ready arm64 domain whose
  mask comes from real Graviton2/3/4 dumps, reviewing a pod of the domain's namespace (wrapped, patched);
- ``untouched``: the same server reviewing a pod of a namespace no domain selects.

Closed loop: ``wrk -t1 -c16`` for throughput (req/s, ratio to echo). Open loop: ``bench/openloop`` (Go,
stdlib only, built into the cache) sends at fixed offered rates and measures each latency from the time the
request was *scheduled*, so a queue in the server shows. Writes ``bench/results/<date>-webhook.json``, the
plot ``docs/img/webhook-latency.png`` and the table ``docs/performance-webhook.md``.

Goals: mutated ≥ 0.7× echo's throughput and p99 < 5 ms at 500 req/s offered; untouched ≥ 0.9×.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.webhook_load import build_openloop, open_loop, server
from tests.support.webhook_server import OTHER_NAMESPACE, Tls, pod, post, review

from hwcap_dev.paths import REPO_ROOT as REPO

RESULTS = REPO / "bench" / "results"
PLOT = REPO / "docs" / "img" / "webhook-latency.png"
TABLE = REPO / "docs" / "performance-webhook.md"
TARGETS = ("echo", "mutated", "untouched")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, body: Path, seconds: int, pid: int) -> dict[str, float]:
    """Closed-loop throughput and latency with wrk (one thread, 16 connections), and the server's CPU time per
    request: on a machine others load too, that is the figure their load does not distort."""
    cpu_before = cpu_seconds(pid)
    script = body.with_suffix(".lua")
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.body = io.open("{body}", "rb"):read("*a")\n')  # fmt: skip
    out = subprocess.run(["wrk", "--latency", "-t1", "-c16", f"-d{seconds}s", "-s", str(script),
                          f"https://127.0.0.1:{port}/mutate-pods"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def millis(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            raise RuntimeError(f"no {label} in wrk output:\n{out}")
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert rps is not None and count is not None, out
    cpu_us = (cpu_seconds(pid) - cpu_before) / int(count.group(1)) * 1e6
    return {"rps": float(rps.group(1)), "p50_ms": millis("50%"), "p99_ms": millis("99%"), "cpu_us_per_request": cpu_us}


def check_answers(port: int, tls: Tls, bodies: dict[str, Path]) -> None:
    """The targets answer what they are meant to (a patch for ``mutated``, none for ``untouched``)."""
    for target, expect_patch in (("mutated", True), ("untouched", False)):
        status, answer = post(port, tls, bodies[target].read_bytes())
        assert status == 200 and isinstance(answer, dict), answer
        response = answer["response"]
        assert response["allowed"] is True and ("patch" in response) is expect_patch, (target, response)


def median_row(rows: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """The round whose ``key`` is the median (the lower one of an even count): a real round, not a blend."""
    return sorted(rows, key=key)[(len(rows) - 1) // 2]


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())  # fmt: skip
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "kernel": platform.release(), "load_before": " ".join(f"{v:.2f}" for v in os.getloadavg())}  # fmt: skip


def plot(open_rows: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    colors = {"echo": "tab:gray", "mutated": "tab:red", "untouched": "tab:blue"}
    for target, rows in open_rows.items():
        rates = [r["offered_rps"] for r in rows]
        for q, style in (("p50", "--"), ("p99", "-")):
            axis.plot(rates, [r["latency_ms"][q] for r in rows], style, marker="o", color=colors[target],
                      label=f"{target} {q}")  # fmt: skip
    axis.axhline(5, color="black", linewidth=0.8, linestyle=":", label="5 ms (p99 goal)")
    axis.set_xlabel("offered rate (req/s, open loop)")
    axis.set_ylabel("latency from scheduled send (ms)")
    axis.set_yscale("log")
    axis.set_title("hwcap-operator webhook over TLS on 127.0.0.1 vs a bare aiohttp echo")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, ncol=3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def table(results: dict[str, Any]) -> str:
    closed, open_rows = results["closed_loop"], results["open_loop"]
    rates = [r["offered_rps"] for r in open_rows["echo"]]
    head = ("| target | req/s (wrk -t1 -c16) | ÷ echo | server CPU µs/request | echo's ÷ this | p50 / p99 ms (wrk) | "
            + " | ".join(f"{rate:g} req/s offered: p50 / p99 ms" for rate in rates) + " |")
    lines = [head, "|" + "---|" * (6 + len(rates))]
    for target in TARGETS:
        c = closed[target]
        cells = []
        for row in open_rows[target]:
            errors = sum(row["errors"].values())
            cell = f"{row['latency_ms']['p50']:.1f} / {row['latency_ms']['p99']:.1f}"
            cells.append(cell + (f" ({errors} errors)" if errors else ""))
        lines.append(f"| {target} | {c['rps']:,.0f} | {c['ratio']:.2f} | {c['median_cpu_us_per_request']:.0f} | "
                     f"{c['cpu_ratio']:.2f} | {c['p50_ms']:.1f} / {c['p99_ms']:.1f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def write_section(name: str, text: str) -> None:
    """Replace what stands between ``<!-- name -->`` and ``<!-- /name -->`` in docs/performance-webhook.md."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    doc = TABLE.read_text()
    head, _, rest = doc.partition(begin)
    _, _, tail = rest.partition(end)
    TABLE.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--open-seconds", type=float, default=8)
    parser.add_argument("--rates", default="100,250,500,1000")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median round is kept")
    parser.add_argument("--no-docs", action="store_true", help="write the results JSON only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: make system-packages (tools/system-packages.txt)")
    rates = [float(r) for r in args.rates.split(",")]
    binary = build_openloop()
    info = machine()
    closed_rounds: dict[str, list[dict[str, float]]] = {t: [] for t in TARGETS}
    open_rounds: dict[str, dict[float, list[dict[str, Any]]]] = {t: {r: [] for r in rates} for t in TARGETS}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        directory = Path(tmp)
        tls = Tls.issue(directory)
        bodies = {"echo": directory / "echo.json", "mutated": directory / "mutated.json",
                  "untouched": directory / "untouched.json"}  # fmt: skip
        bodies["mutated"].write_text(json.dumps(review(pod())))
        bodies["echo"].write_text(json.dumps(review(pod())))
        bodies["untouched"].write_text(json.dumps(review(pod(), namespace=OTHER_NAMESPACE)))
        echo = stack.enter_context(server("echo", directory, tls))
        webhook = stack.enter_context(server("webhook", directory, tls))
        echo_port, webhook_port = echo.port, webhook.port
        pids = {"echo": echo.pid, "mutated": webhook.pid, "untouched": webhook.pid}
        check_answers(webhook_port, tls, bodies)
        ports = {"echo": echo_port, "mutated": webhook_port, "untouched": webhook_port}
        # Rounds interleave the targets, so a change in the machine's load hits all three alike (medians kept).
        for round_ in range(args.rounds):
            for target in TARGETS:
                measured = wrk(ports[target], bodies[target], args.wrk_seconds, pids[target])
                closed_rounds[target].append(measured)
                print(f"round {round_ + 1} {target:10} closed loop: {measured['rps']:8.0f} req/s "
                      f"p50 {measured['p50_ms']:.2f} ms p99 {measured['p99_ms']:.2f} ms, server CPU "
                      f"{measured['cpu_us_per_request']:.0f} us/request", flush=True)
            for rate in rates:
                for target in TARGETS:
                    row = open_loop(binary, ports[target], tls.ca_file, bodies[target], rate, args.open_seconds)
                    open_rounds[target][rate].append(row)
                    ms = row["latency_ms"]
                    print(f"round {round_ + 1} {target:10} open loop {rate:6.0f} req/s: achieved "
                          f"{row['achieved_rps']:7.1f} p50 {ms['p50']:.2f} p99 {ms['p99']:.2f} max {ms['p100']:.2f} ms "
                          f"errors {row['errors']}", flush=True)  # fmt: skip
    closed = {t: median_row(closed_rounds[t], lambda r: r["rps"]) for t in TARGETS}
    cpu = {t: sorted(r["cpu_us_per_request"] for r in closed_rounds[t])[(args.rounds - 1) // 2] for t in TARGETS}
    open_rows = {t: [median_row(open_rounds[t][r], lambda row: row["latency_ms"]["p99"]) for r in rates]
                 for t in TARGETS}  # fmt: skip
    for target in TARGETS:
        closed[target]["ratio"] = closed[target]["rps"] / closed["echo"]["rps"]
        closed[target]["median_cpu_us_per_request"] = cpu[target]
        closed[target]["cpu_ratio"] = cpu["echo"] / cpu[target]
    at_500 = next((r for r in open_rows["mutated"] if r["offered_rps"] == 500), None)
    goals = {
        "mutated_throughput_ratio": {"goal": ">= 0.7", "measured": round(closed["mutated"]["ratio"], 3),
                                     "met": closed["mutated"]["ratio"] >= 0.7},
        "untouched_throughput_ratio": {"goal": ">= 0.9", "measured": round(closed["untouched"]["ratio"], 3),
                                       "met": closed["untouched"]["ratio"] >= 0.9},
        "mutated_cpu_per_request_ratio": {"goal": ">= 0.7", "measured": round(closed["mutated"]["cpu_ratio"], 3),
                                          "met": closed["mutated"]["cpu_ratio"] >= 0.7},
        "untouched_cpu_per_request_ratio": {"goal": ">= 0.9", "measured": round(closed["untouched"]["cpu_ratio"], 3),
                                            "met": closed["untouched"]["cpu_ratio"] >= 0.9},
    }  # fmt: skip
    if at_500 is not None:
        goals["mutated_p99_ms_at_500"] = {"goal": "< 5", "measured": at_500["latency_ms"]["p99"],
                                          "met": at_500["latency_ms"]["p99"] < 5 and not at_500["errors"]}  # fmt: skip
    results = {"machine": info, "closed_loop": closed, "open_loop": open_rows, "goals": goals}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-webhook.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    for name, goal in goals.items():
        print(f"{name}: {goal['measured']} (goal {goal['goal']}): {'met' if goal['met'] else 'NOT met'}")
    print(f"results: {out.relative_to(REPO)}")
    if not args.no_docs:
        plot(open_rows, PLOT)
        goal_lines = "\n".join(f"- {name}: {g['measured']} (goal {g['goal']}): {'met' if g['met'] else '**not met**'}"
                                for name, g in goals.items())  # fmt: skip
        write_section("throughput", f"{table(results)}\n\n{goal_lines}\n\nMachine: {info['cpu']}, {info['cores']} "
                      f"cores, Python {info['python']}, kernel {info['kernel']}, load average before the run "
                      f"{info['load_before']}; {args.rounds} interleaved rounds, the median round shown.")  # fmt: skip
        print(f"plot: {PLOT.relative_to(REPO)}, table: {TABLE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
