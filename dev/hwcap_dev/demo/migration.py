"""The demo's migration: a running pod of the x86 domain moves between the two real CRI-O nodes, and a move
towards a node that lacks features of its mask is refused (issue 17).

The pod runs the migration proof's counter (``tests/e2e/migration/counter.c``, compiled static with musl into
the demo's state directory and mounted read-only by hostPath): the webhook wraps it in ``hwcap-exec`` like any
pod of the domain; the counter then masks its own AT_HWCAP with the domain's word (on this kernel the mask
``hwcap-exec`` set does not survive the exec, docs/kernel.md#inherit-hwcap), draws a random token and appends
``token count AT_HWCAP`` to ``/tmp/count.log`` in its rootfs five times a second. ``hwcapctl migrate``
checkpoints it through the kubelet, pushes the checkpoint image to the loopback registry, and the target's
CRI-O restores it. The same token with counts going on is a restore; a restart would start at 1 with a new
token. The namespace is Pod Security ``privileged`` and the pod runs as root: CRIU cannot dump a uid-65534
task on this machine (docs/migration.md#uid), and a hostPath needs it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hwcap_dev import paths
from hwcap_dev.demo.console import Step
from hwcap_dev.demo.processes import ClusterCommands, DemoError, wait_for
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_operator import keys

NAMESPACE = "demo-migrate"
POD = "counter"
LOG = "/tmp/count.log"
COUNTER_SOURCE = paths.REPO_ROOT / "tests" / "e2e" / "migration" / "counter.c"


def build_counter(into: Path) -> Path:
    """The static counter (musl), in a directory every uid may read (it is a hostPath volume)."""
    into.mkdir(parents=True, exist_ok=True)
    for directory in (into, *into.parents):
        if directory == Path("/"):
            break
        directory.chmod(directory.stat().st_mode | 0o005)
    out = into / "counter"
    proc = subprocess.run(["musl-gcc", "-static", "-O2", f"-I{paths.SHIM_SOURCE_DIR}", "-o", str(out),
                           str(COUNTER_SOURCE)], capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise DemoError(f"building the counter ({COUNTER_SOURCE}) failed: {proc.stderr.strip()[-400:]}")
    return into


def counter_pod(node: str, image: str, counter_dir: Path, word: int) -> dict[str, object]:
    """The pod as its author writes it: the counter on ``node``; the webhook adds the mask and hwcap-exec."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "volumes": [{"name": "bin", "hostPath": {"path": str(counter_dir)}}],
            "containers": [{"name": "app", "image": image, "command": ["/mig/counter", f"{word:x}", LOG],
                            "volumeMounts": [{"name": "bin", "mountPath": "/mig", "readOnly": True}],
                            "securityContext": {"runAsUser": 0}}],
        },
    }  # fmt: skip


def counts(text: str) -> list[tuple[str, int, int]]:
    """The counter's lines: (token, count, AT_HWCAP)."""
    return [(t, int(c), int(h, 16)) for t, c, h in (line.split() for line in text.splitlines() if line.strip())]


class MigrationScene:
    """The migration part of the demo, on the real nodes ``real`` started for the x86 domain ``domain``."""

    def __init__(self, real: RealNodes, sh: ClusterCommands, hwcapctl: Path, domain: str, namespace_label: str,
                 say: Callable[[str], None], step: Callable[[str], Step], timeout: float) -> None:
        self.real, self.sh, self.hwcapctl, self.domain = real, sh, hwcapctl, domain
        self.namespace_label, self.say, self.step, self.timeout = namespace_label, say, step, timeout

    def run(self, weak_node: str) -> float:
        """Start the counter on the first real node, migrate it to the second, show the count and the word,
        then show the refusal towards ``weak_node``. Returns how long ``hwcapctl migrate`` took (seconds)."""
        source, target = (node.name for node in self.real.nodes[:2])
        word = self._start(source)
        before = self._show_log(POD, "the source, before the move")
        started = time.monotonic()
        self._hwcapctl("migrate", "--pod", f"{NAMESPACE}/{POD}", "--to", target, "--kubelet-direct",
                       "--registry", self.real.registry_host, "--insecure-registry")  # fmt: skip
        seconds = time.monotonic() - started
        restored = f"{POD}-m"
        self.sh.kubectl("get", "pod", "-n", NAMESPACE, "-o", "wide")
        time.sleep(1.0)
        after = self._show_log(restored, "the restored pod on the target")
        self._verdict(before, after, word, seconds)
        self.say(f"==> and towards {weak_node}, which lacks features of the pod's mask:")
        self._hwcapctl("migrate", "--pod", f"{NAMESPACE}/{restored}", "--to", weak_node,
                       "--registry", self.real.registry_host, check=False)  # fmt: skip
        return seconds

    def _hwcapctl(self, *args: str, check: bool = True) -> None:
        """Run hwcapctl and show what a user sees: its progress lines (stderr) and its verdict (stdout)."""
        self.say(f"$ hwcapctl {' '.join(args)}")
        proc = self.sh.run([self.hwcapctl, *args], show=False, check=False)
        for line in (proc.stderr + proc.stdout).rstrip().splitlines():
            self.say("  " + line)
        if check and proc.returncode != 0:
            raise DemoError(f"hwcapctl {args[0]} exited {proc.returncode}: {proc.stdout.strip()}")

    def _start(self, source: str) -> int:
        assert self.real.images is not None
        with self.step(f"a counter that keeps its count in memory, on {source} (CRI-O), in {self.domain}"):
            for node in self.real.nodes:
                wait_for(f"{node.name} to be a member of {self.domain}", self._member(node.name),
                         max(self.timeout, 120.0))  # fmt: skip
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {
                self.namespace_label: self.domain, "pod-security.kubernetes.io/enforce": "privileged"}}}
            self.sh.kubectl("apply", "-f", "-", input_text=json.dumps(namespace), show=False)
            mask = self.sh.get_json("migrationdomain", self.domain)["status"]["mask"]
            word = int(mask["hwcap"], 16)
            counter_dir = build_counter(self.sh.state.state_dir / "migration")
            pod = counter_pod(source, self.real.images.sample, counter_dir, word)
            self.sh.kubectl("apply", "-n", NAMESPACE, "-f", "-", input_text=json.dumps(pod), show=False)
            wait_for(f"{POD} running", lambda: self.sh.get_json("pod", "-n", NAMESPACE, POD).get("status", {}).get(
                "phase") == "Running" or None, max(self.timeout, 120.0))  # fmt: skip
            time.sleep(1.5)
        injected = self.sh.get_json("pod", "-n", NAMESPACE, POD)
        command = injected["spec"]["containers"][0]["command"]
        self.say(f"    {self.domain}'s mask: AT_HWCAP {mask['hwcap']} (mask {mask['id']}); the webhook made the "
                 f"command\n    {' '.join(command)[:150]}")  # fmt: skip
        return word

    def _member(self, node: str) -> Callable[[], str | None]:
        label = f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{self.domain}"
        return lambda: self.sh.get_json("node", node)["metadata"].get("labels", {}).get(label)

    def _show_log(self, pod: str, what: str) -> list[tuple[str, int, int]]:
        text = self.sh.kubectl("exec", "-n", NAMESPACE, pod, "--", "cat", LOG, show=False).stdout
        lines = counts(text)
        if not lines:
            raise DemoError(f"{pod} wrote nothing to {LOG}")
        self.say(f"$ kubectl exec -n {NAMESPACE} {pod} -- cat {LOG}   # {what}: token, count, AT_HWCAP")
        shown = lines if len(lines) <= 4 else [lines[0], None, *lines[-3:]]
        for line in shown:
            self.say("  ..." if line is None else f"  {line[0]} {line[1]} {line[2]:#x}")
        return lines

    def _verdict(self, before: list[tuple[str, int, int]], after: list[tuple[str, int, int]], word: int,
                 seconds: float) -> None:
        tokens = {t for t, _, _ in after}
        consecutive = [c for _, c, _ in after] == list(range(1, len(after) + 1))
        words = {hw for _, _, hw in after}
        if tokens != {before[0][0]} or not consecutive:
            raise DemoError(f"the restored pod's log is not one process counting on: tokens {sorted(tokens)}")
        self.say(f"    restored, not restarted: the same token {before[0][0]}, the count went on from {before[-1][1]}"
                 f" to {after[-1][1]} without a gap\n    (a restart would draw a new token and start at 1); "
                 f"migrate took {seconds:.1f}s")  # fmt: skip
        masked = ", ".join(f"{w:#x}" for w in sorted(words))
        self.say(f"    AT_HWCAP after the restore: {masked} = this CPU's word AND the domain's {word:#x} - CRIU "
                 "restored the\n    process's own masked vector; nothing on the target recomputed it.")  # fmt: skip
