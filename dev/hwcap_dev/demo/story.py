"""The demo's story: the scenario ``hwcap-dev demo up`` (``make demo``) plays, step by step, and what it shows.

It starts the local control plane (:mod:`hwcap_dev.devcluster`; the binaries are built once and cached),
installs the CRD and the Helm chart, runs the operator and one node agent as local processes with the tokens of
the chart's own ServiceAccounts, registers fake Ready nodes made from real CPU dumps of several arm64
generations, applies the example MigrationDomains and the sample pod from ``examples/``, and shows what a user
would look at: the domains, the mask and its dropped features, the injected pod and where it was scheduled, a
migration check and a what-if. Everything stays up afterwards (detached, state under
``~/.cache/hwcap-operator/demo``, :mod:`hwcap_dev.demo.state`) until ``down`` (:mod:`hwcap_dev.demo.cli`).
What it prints is :mod:`hwcap_dev.demo.console`; the commands and processes it runs, :mod:`hwcap_dev.demo.processes`.

The fake nodes have no kubelet: the chart's Deployment and DaemonSet are created but never run a pod, and
pods bound to fake nodes stay Pending. As root, two real nodes (kubelet + CRI-O on this machine,
:mod:`hwcap_dev.demo.real_pod`) join the x86 pool, a wrapped pod really runs there, and a running pod is migrated
from one to the other with ``hwcapctl migrate`` (:mod:`hwcap_dev.demo.migration`). The demo runs
``hwcap-operator run`` and ``hwcap-operator agent`` itself, and points the chart's
MutatingWebhookConfiguration at the local webhook. It never reads stdin, so it runs the same under CI.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from hwcap_dev import paths
from hwcap_dev.demo.console import LineSink, Step, short, shown
from hwcap_dev.demo.migration import MigrationScene
from hwcap_dev.demo.processes import (
    ClusterCommands,
    DemoError,
    console_script,
    operator_ready,
    spawn_operator_program,
    wait_for,
)
from hwcap_dev.demo.real_pod import REAL_NODE_PREFIX, can_run_real_nodes, run_real_pod
from hwcap_dev.demo.state import DemoState
from hwcap_dev.devcluster import build
from hwcap_dev.devcluster import simulated_nodes as nodes
from hwcap_dev.devcluster.assets import AssetError, resolve_binaries
from hwcap_dev.devcluster.pki import CertificateAuthority
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_dev.devcluster.runner import ControlPlane, Options, free_port
from hwcap_operator import keys
from hwcap_operator.agent.report import format_words
from hwcap_operator.features.cpuinfo import parse_cpuinfo

CHART_DIR = paths.CHART_DIR
CRD_FILE = paths.REPO_ROOT / "crds" / "hwcap.dev_migrationdomains.yaml"
EXAMPLES = paths.EXAMPLES_DIR
PROFILES = paths.PROFILES_DIR
SHIM = paths.SHIM_SOURCE_DIR / "build" / "hwcap-exec"

RELEASE = "hwcap-operator"
OPERATOR_NAMESPACE = "hwcap-system"
OPERATOR_SA = RELEASE  # the chart's fullname when the release is named like the chart
AGENT_SA = f"{RELEASE}-agent"
NFD_NAMESPACE = keys.NFD_NAMESPACE_DEFAULT
INIT_IMAGE = "ghcr.io/hwcap-dev/hwcap-operator:0.1.0"
TOKEN_DURATION = "168h"

ARM64_DOMAIN = "arm64-general"
X86_DOMAIN = "x86-v3"
APPS_NAMESPACE = "demo-apps"
X86_NAMESPACE = "demo-x86"
FALLBACK_VARIABLES = ("GLIBC_TUNABLES", "GODEBUG", "OPENSSL_ia32cap")
POD = "sample"
POOL_LABEL = "example.com/pool"
#: The namespace label the examples' workloads.namespaceSelector matches (the user's choice; the operator reads
#: whatever label a domain selects on).
EXAMPLE_NAMESPACE_LABEL = "hwcap.dev/migration-domain"

#: Members of the arm64 domain when it is created: three Arm server generations (Neoverse V1, V2, N2).
ARM64_MEMBERS = {
    "demo-graviton3": "arm64-aws-graviton3-neoverse-v1",
    "demo-graviton4": "arm64-aws-graviton4-neoverse-v2",
    "demo-neoverse-n2": "arm64-neoverse-n2-github-runner",
}
#: A Neoverse-N1 node that joins the pool after the mask is frozen: it lacks features of the mask.
LATE_NODE = ("demo-ampere-altra", "arm64-ampere-altra-neoverse-n1")
#: An older x86 node outside the pool: the migration the demo shows refused goes there.
WEAK_X86_NODE = ("demo-zen2", "x86_64-amd-zen2-rome-epyc7742")
#: A dump that is not registered at all: ``hwcapctl what-if`` asks what would happen if it joined.
WHAT_IF_PROFILE = "arm64-aws-graviton2-neoverse-n1"
#: x86 nodes of the second domain, next to this machine itself (reported by the real node agent).
X86_NODES = {
    "demo-zen3": "x86_64-amd-zen3-milan-epyc7763-azure-vm",
    "demo-icelake": "x86_64-intel-icelake-sp-platinum8370c-azure-vm",
}


class Demo:
    """One ``up`` run; every step prints what it does and the commands a user can repeat."""

    def __init__(self, state_dir: Path, out: TextIO = sys.stdout, timeout: float = 90.0) -> None:
        self.state = DemoState(state_dir)
        self.out = out
        self.timeout = timeout
        self.sh = ClusterCommands(self.state, self.say)
        self.plane: ControlPlane | None = None
        self.api: Any = None
        self.webhook_port = free_port()
        self.metrics_port = free_port()
        self.hwcapctl = console_script("hwcapctl")
        self.local_node = ""
        self.real: RealNodes | None = None
        self.init_image = INIT_IMAGE

    # -- output helpers ------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, title: str) -> Step:
        return Step(title, self.out)

    # -- steps ---------------------------------------------------------------------------------------------

    def up(self) -> None:
        started = time.monotonic()
        self.say(f"hwcap-operator demo (state: {self.state.state_dir})")
        self._binaries()
        self._control_plane()
        self._registry()
        self._install()
        self._operator()
        self._nodes()
        self._agent()
        self._domains()
        self._late_node()
        self._pod()
        self._fallbacks()
        self._real_pod()
        self._migration()
        self._checks()
        seconds = time.monotonic() - started
        self.state.info.update({"seconds": round(seconds, 1), "metrics": f"http://127.0.0.1:{self.metrics_port}",
                                "kubeconfig": str(self.state.kubeconfig)})  # fmt: skip
        self.state.save()
        self._summary(seconds)

    def _binaries(self) -> None:
        try:  # cached, or provided by $KUBEBUILDER_ASSETS / $TEST_ASSET_*
            self.sh.binaries = resolve_binaries(allow_build=False)
            self.say(f"==> control-plane binaries: {self.sh.binaries.kube_apiserver.parent}")
            return
        except AssetError:
            pass
        title = "building kube-apiserver, kube-scheduler, etcd, helm from the Go module proxy (first run only)"
        with self.step(title) as step:
            step.detail = f"waiting for the build (log: {build.cache_dir() / 'build.log'})"
            log_path = self.state.state_dir / "build-progress.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a") as log:
                sink = LineSink(lambda line: setattr(step, "detail", line.removeprefix("[devcluster build] ")), log)
                with contextlib.redirect_stderr(sink):
                    self.sh.binaries = resolve_binaries(allow_build=True)

    def _control_plane(self) -> None:
        assert self.sh.binaries is not None
        with self.step("starting etcd, kube-apiserver and kube-scheduler on loopback"):
            self.plane = ControlPlane(self.sh.binaries, Options(state_dir=self.state.cluster_dir, scheduler=True,
                                                             detached=True, start_timeout=120.0))  # fmt: skip
            self.plane.start()
        self.say(f"    apiserver {self.plane.server}, logs in {self.plane.log_dir}")
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(self.state.kubeconfig))  # type: ignore[no-untyped-call]

    def _registry(self) -> None:
        """With root: the loopback registry and engine-free images, so the operator injects a pullable init
        image (``hwcap/hwcap-exec``) and the real node of :meth:`_real_pod` can run the sample image."""
        assert self.plane is not None
        why_not = can_run_real_nodes()
        if why_not:
            self.say(f"==> real node: skipped, {why_not}")
            return
        with self.step("starting a registry on 127.0.0.1 and assembling the images without an engine"):
            self.real = RealNodes(self.plane, 2, detached=True, hwcap_exec=SHIM if SHIM.is_file() else None,
                                  name_prefix=REAL_NODE_PREFIX, runtime="cri-o")
            images = self.real.start_registry()
            self.init_image = images.init
        self.say(f"    init image {images.init} (linux/amd64 + linux/arm64 index), sample {images.sample};\n"
                 f"    SBOMs (CycloneDX) beside them in {self.real.images_dir}")

    def _real_pod(self) -> None:
        if self.real is not None:
            run_real_pod(self.real, self.sh, X86_NAMESPACE, POOL_LABEL, "x86-general", self.say, self.step,
                         self.timeout)

    def _migration(self) -> None:
        """With root: a running pod moves between the two real nodes; a move to a weaker node is refused."""
        if self.real is None:
            return
        from kubernetes import client

        # What NFD's worker on the real nodes would publish (unfiltered cpuid flags): the x86 mask names CPUID
        # flags NFD's labels leave out, and `migrate`, like the operator, reads the NodeFeature first.
        here = dataclasses.replace(nodes.load_profile(Path("/proc/cpuinfo")), name="this-machine")
        for real_node in self.real.nodes:
            self._node_feature(real_node.name, here)
        name, profile = WEAK_X86_NODE
        weak = nodes.load_profile(PROFILES / f"{profile}.txt")
        manifest = nodes.node_manifest(name, weak)
        # the AT_HWCAP word its node agent would report (NFD names no CPUID.1:EDX bits such as tsc or pae)
        words = parse_cpuinfo((PROFILES / f"{profile}.txt").read_text()).mask.hwcap
        manifest["metadata"]["annotations"] = {keys.AGENT_HWCAP_ANNOTATION: format_words(words)}
        nodes.create_ready_node(client.CoreV1Api(self.api), manifest)
        self._node_feature(name, weak)
        scene = MigrationScene(self.real, self.sh, self.hwcapctl, X86_DOMAIN, EXAMPLE_NAMESPACE_LABEL, self.say,
                               self.step, self.timeout)  # fmt: skip
        self.state.info["migrate_seconds"] = round(scene.run(name), 1)

    def _install(self) -> None:
        assert self.sh.binaries is not None
        with self.step("installing the CRD (crds/) and the Helm chart (charts/hwcap-operator)"):
            self.sh.kubectl("apply", "-f", shown(CRD_FILE))
            self.sh.kubectl("wait", "--for=condition=Established", "crd/migrationdomains.hwcap.dev", "--timeout=60s",
                         show=False)  # fmt: skip
            self.sh.run([self.sh.binaries.helm, "install", RELEASE, str(CHART_DIR), "--namespace", OPERATOR_NAMESPACE,
                      "--create-namespace", "--set", "logFormat=text"], show=False)  # fmt: skip
            self.say(f"$ helm install {RELEASE} charts/hwcap-operator --namespace {OPERATOR_NAMESPACE} "
                     "--create-namespace --set logFormat=text")  # fmt: skip
            self.sh.kubectl("get", "-n", OPERATOR_NAMESPACE, "deployment,daemonset,serviceaccount,service,secret",
                         "-l", f"app.kubernetes.io/instance={RELEASE}")  # fmt: skip
            # Node Feature Discovery's NodeFeature API (a minimal CRD): NFD's labels leave out many x86 flags
            # (CMOV, SSE4.2, BMI2, ...), its NodeFeature objects do not, and the operator reads them first.
            self.sh.kubectl("apply", "-f", "-", input_text=json.dumps(nodes.nodefeature_crd()), show=False)
            self.sh.kubectl("create", "namespace", NFD_NAMESPACE, show=False)
            self.sh.kubectl("wait", "--for=condition=Established", "crd/nodefeatures.nfd.k8s-sigs.io", "--timeout=60s",
                         show=False)  # fmt: skip
        self.say("    No kubelet runs here: the Deployment and the DaemonSet exist but never start a pod. The demo\n"
                 "    runs the same `hwcap-operator run` / `hwcap-operator agent` as local processes, with tokens\n"
                 "    of the chart's own ServiceAccounts (so the chart's RBAC is what they get).")  # fmt: skip

    def _token(self, service_account: str, *extra: str) -> str:
        return self.sh.kubectl("create", "token", service_account, "-n", OPERATOR_NAMESPACE,
                            f"--duration={TOKEN_DURATION}", *extra, show=False).stdout.strip()  # fmt: skip

    def _operator(self) -> None:
        assert self.plane is not None
        with self.step("running the operator (reconciler + webhook) as the chart's operator ServiceAccount"):
            ca = CertificateAuthority.load(self.plane.pki_dir / "ca.crt", self.plane.pki_dir / "ca.key")
            cert, key = ca.issue("hwcap-operator-webhook", dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                                 server=True).write(self.state.state_dir / "webhook", "tls")  # fmt: skip
            kubeconfig = self.plane.token_kubeconfig(OPERATOR_SA, self._token(OPERATOR_SA),
                                                     path=self.state.state_dir / "operator.kubeconfig")  # fmt: skip
            proc = spawn_operator_program(self.state, "hwcap-operator", [
                "--kubeconfig", str(kubeconfig), "--log-format", "text", "run", "--namespace", OPERATOR_NAMESPACE,
                "--init-image", self.init_image, "--webhook-host", "127.0.0.1",
                "--webhook-port", str(self.webhook_port),
                "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--metrics-host", "127.0.0.1",
                "--metrics-port", str(self.metrics_port), "--no-registry-lookup", "--resync-seconds", "30",
            ])  # fmt: skip
            wait_for("the operator's /readyz", lambda: operator_ready(proc, self.metrics_port), self.timeout)
            # The chart's own webhook configuration, pointed at the local process instead of the Service.
            patch = [{"op": "replace", "path": "/webhooks/0/clientConfig", "value": {
                "url": f"https://127.0.0.1:{self.webhook_port}/mutate-pods",
                "caBundle": base64.b64encode(ca.cert_pem).decode()}}]  # fmt: skip
            self.sh.kubectl("patch", "mutatingwebhookconfiguration", RELEASE, "--type=json", "-p", json.dumps(patch),
                         show=False)  # fmt: skip
        self.say(f"    webhook https://127.0.0.1:{self.webhook_port}/mutate-pods (the chart's webhook configuration"
                 f" now points here),\n    metrics http://127.0.0.1:{self.metrics_port}/metrics")  # fmt: skip

    def _nodes(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        with self.step("registering fake Ready nodes made from real CPU dumps (tests/data/profiles)"):
            plan = [(name, PROFILES / f"{profile}.txt", "general") for name, profile in ARM64_MEMBERS.items()]
            plan += [(name, PROFILES / f"{profile}.txt", "x86-general") for name, profile in X86_NODES.items()]
            registered = [(name, nodes.load_profile(path), pool) for name, path, pool in plan]
            # This machine itself, as one more x86 node: the node agent below reports its real AT_HWCAP words.
            local = dataclasses.replace(nodes.load_profile(Path("/proc/cpuinfo")), name="this-machine")
            self.state.info["local_node"] = self.local_node = f"demo-local-{local.arch}"
            registered.append((self.local_node, local, "x86-general" if local.arch == "amd64" else "local"))
            for name, profile, pool in registered:
                nodes.create_ready_node(core, nodes.node_manifest(name, profile, labels={POOL_LABEL: pool}))
                self._node_feature(name, profile)
            self.sh.kubectl("get", "nodes", "-L", f"kubernetes.io/arch,{POOL_LABEL},{keys.DEVCLUSTER_PROFILE_LABEL}")

    def _node_feature(self, name: str, profile: nodes.CpuProfile) -> None:
        """What NFD's worker on that node would publish: its unfiltered cpuid flags."""
        self.sh.kubectl("apply", "-f", "-", input_text=json.dumps(nodes.node_feature_manifest(name, profile,
                     NFD_NAMESPACE)), show=False)  # fmt: skip

    def _agent(self) -> None:
        assert self.plane is not None
        with self.step(f"running the node agent for {self.local_node} (this machine) as the chart's agent "
                       "ServiceAccount"):  # fmt: skip
            # The agent's token must be bound to a pod on its node: the chart's admission policy lets an agent
            # change only the Node named in its token. This pod is that binding (it never runs: no kubelet).
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"agent-{self.local_node}", "namespace": OPERATOR_NAMESPACE,
                                "labels": {"app.kubernetes.io/component": "node-agent"}},
                   "spec": {"serviceAccountName": AGENT_SA, "nodeName": self.local_node,
                            "containers": [{"name": "agent", "image": INIT_IMAGE}]}}  # fmt: skip
            self.sh.kubectl("apply", "-f", "-", input_text=json.dumps(pod), show=False)
            token = self._token(AGENT_SA, "--bound-object-kind=Pod", f"--bound-object-name=agent-{self.local_node}")
            kubeconfig = self.plane.token_kubeconfig(AGENT_SA, token, path=self.state.state_dir / "agent.kubeconfig")
            args = ["--kubeconfig", str(kubeconfig), "--log-format", "text", "agent", "--node-name", self.local_node,
                    "--interval", "60"]  # fmt: skip
            if SHIM.is_file():
                args += ["--hwcap-exec", str(SHIM)]
            spawn_operator_program(self.state, "hwcap-agent", args)

            def reported() -> dict[str, str] | None:
                annotations = self.sh.get_json("node", self.local_node)["metadata"].get("annotations") or {}
                found = {k: v for k, v in annotations.items() if k.startswith(keys.AGENT_ANNOTATION_PREFIX)}
                return found if keys.AGENT_INHERITANCE_ANNOTATION in found else None

            published = wait_for("the agent's annotations on its Node", reported, self.timeout)
        for key, value in sorted(published.items()):
            self.say(f"    {key}: {value}")
        verdict = published[keys.AGENT_INHERITANCE_ANNOTATION]
        why = {"unsupported": "hwcap-exec --probe: this kernel does not carry a mask across exec (patch not merged)",
               "unknown": "no hwcap-exec binary to probe with (run `make shim`)",
               "supported": "this kernel carries the patch"}.get(verdict, "")  # fmt: skip
        self.say(f"    HWCAP inheritance on this machine: {verdict}" + (f" - {why}" if why else ""))

    def _apply_example(self, name: str) -> None:
        self.sh.kubectl("apply", "-f", shown(EXAMPLES / name))

    def _domain_status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.sh.get_json("migrationdomain", name).get("status") or {}
        return status

    def _condition(self, name: str, ctype: str) -> dict[str, Any] | None:
        for cond in self._domain_status(name).get("conditions") or []:
            if cond.get("type") == ctype:
                return dict(cond)
        return None

    def _wait_ready(self, name: str) -> None:
        try:
            wait_for(f"MigrationDomain {name} Ready", lambda: (
                (self._condition(name, "Ready") or {}).get("status") == "True"), self.timeout)  # fmt: skip
        except DemoError as err:
            conditions = self._domain_status(name).get("conditions") or []
            said = "; ".join(f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message')}" for c in conditions)
            raise DemoError(f"{err} ({said or 'no conditions yet: is the operator reconciling?'})") from None

    def _domains(self) -> None:
        with self.step("applying MigrationDomains from examples/ and waiting until they are Ready"):
            self._apply_example("arm64-auto-domain.yaml")
            self._apply_example("x86-preset-fallbacks.yaml")
            for name in (ARM64_DOMAIN, X86_DOMAIN):
                self._wait_ready(name)
        self.sh.kubectl("get", "migrationdomains")
        self.sh.kubectl("get", "nodes", "-L", f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{ARM64_DOMAIN},"
                     f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{X86_DOMAIN}")  # fmt: skip

    def _late_node(self) -> None:
        from kubernetes import client

        name, profile = LATE_NODE
        with self.step(f"a weaker node joins the pool: {name} ({profile}); the frozen mask must not move"):
            before = self._domain_status(ARM64_DOMAIN)["mask"]["id"]
            late = nodes.load_profile(PROFILES / f"{profile}.txt")
            nodes.create_ready_node(client.CoreV1Api(self.api), nodes.node_manifest(
                name, late, labels={POOL_LABEL: "general"}))  # fmt: skip
            self._node_feature(name, late)
            status = wait_for(f"{name} to be excluded from {ARM64_DOMAIN}", lambda: (
                s if (s := self._domain_status(ARM64_DOMAIN)).get("excluded", {}).get("count") else None),
                self.timeout)  # fmt: skip
            if status["mask"]["id"] != before:
                raise DemoError(f"the frozen mask of {ARM64_DOMAIN} moved from {before} to {status['mask']['id']}")
        self.sh.run([self.hwcapctl, "get", "domains"])
        for excluded in status["excluded"]["nodes"]:
            self.say(f"    excluded {excluded['name']}: {excluded['reason']} - {excluded['message']}")

    def _pod(self) -> None:
        with self.step(f"creating the sample pod (examples/pod.yaml) in namespace {APPS_NAMESPACE}"):
            self._apply_example("namespace.yaml")
            pod = wait_for("an injected sample pod", self._create_injected_pod, self.timeout)
            pod = wait_for("the scheduler to bind the pod", lambda: (
                p if (p := self.sh.get_json("pod", "-n", APPS_NAMESPACE, POD))["spec"].get("nodeName") else None),
                self.timeout)  # fmt: skip
        self.sh.kubectl("get", "pod", "-n", APPS_NAMESPACE, POD, "-o", "wide")
        self.say(f"$ kubectl get pod -n {APPS_NAMESPACE} {POD} -o yaml   # what the webhook changed:")
        for line in describe_injection(pod):
            self.say("  " + line)
        self.state.info["pod_node"] = pod["spec"]["nodeName"]

    def _fallbacks(self) -> None:
        title = f"the same pod in a namespace of {X86_DOMAIN}, as a server-side dry run: the userspace fallbacks"
        with self.step(title):
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": X86_NAMESPACE, "labels": {
                EXAMPLE_NAMESPACE_LABEL: X86_DOMAIN, "pod-security.kubernetes.io/enforce": "restricted"}}}
            self.sh.kubectl("apply", "-f", "-", input_text=json.dumps(namespace), show=False)
            pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
            pod["spec"]["nodeSelector"] = {"kubernetes.io/arch": "amd64"}
            mutated = wait_for("the webhook to mutate a dry-run pod", lambda: self._dry_run(pod), self.timeout)
        self.say(f"$ kubectl apply --dry-run=server -n {X86_NAMESPACE} -f - -o yaml   # examples/pod.yaml on amd64")
        env = {e["name"]: e.get("value", "") for e in mutated["spec"]["containers"][0].get("env") or []}
        for name in FALLBACK_VARIABLES:
            self.say(f"  {name}={short(env.get(name, '(not set)'), 100)}")
        only = self._domain_status(X86_DOMAIN).get("fallbackOnlyFeatures") or []
        self.say(f"    {len(only)} dropped x86 features are CPUID-only: HWCAPs cannot hide them, only these variables "
                 f"do ({', '.join(only[:6])}, ...)")  # fmt: skip

    def _dry_run(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The pod as admission would store it; None until the webhook knows the new namespace."""
        proc = self.sh.kubectl("apply", "--dry-run=server", "-n", X86_NAMESPACE, "-o", "json", "-f", "-",
                            input_text=json.dumps(pod), show=False)  # fmt: skip
        stored: dict[str, Any] = json.loads(proc.stdout)
        annotations = stored["metadata"].get("annotations") or {}
        return stored if annotations.get(keys.POD_DOMAIN_ANNOTATION) == X86_DOMAIN else None

    def _create_injected_pod(self) -> dict[str, Any] | None:
        """Create the pod; if it was admitted before the API server saw the patched webhook configuration
        (failurePolicy Ignore lets it through unmasked), delete it and try again."""
        self.sh.kubectl("apply", "-n", APPS_NAMESPACE, "-f", str(EXAMPLES / "pod.yaml"), show=False)
        pod = self.sh.get_json("pod", "-n", APPS_NAMESPACE, POD)
        if keys.POD_MASK_ID_ANNOTATION in (pod["metadata"].get("annotations") or {}):
            self.say(f"$ kubectl apply -n {APPS_NAMESPACE} -f {shown(EXAMPLES / 'pod.yaml')}")
            return pod
        self.sh.kubectl("delete", "pod", "-n", APPS_NAMESPACE, POD, "--grace-period=0", "--force", "--wait=true",
                     show=False)  # fmt: skip
        return None

    def _checks(self) -> None:
        members = [n for n in ARM64_MEMBERS if n != self.state.info["pod_node"]]
        self.say(f"==> may {APPS_NAMESPACE}/{POD} move (CRIU restore, live migration) to another node?")
        for node in (members[0], LATE_NODE[0]):
            self.sh.run([self.hwcapctl, "check", "--domain", ARM64_DOMAIN, "--pod", f"{APPS_NAMESPACE}/{POD}",
                      "--node", node], check=False)  # fmt: skip
        self.say(f"==> what if a Graviton2 ({WHAT_IF_PROFILE}) joined {ARM64_DOMAIN}? (dry run, nothing is written)")
        self.sh.run([self.hwcapctl, "what-if", "--domain", ARM64_DOMAIN, "--node",
                  shown(PROFILES / f"{WHAT_IF_PROFILE}.txt")], check=False)  # fmt: skip

    def _summary(self, seconds: float) -> None:
        self.say("")
        self.say(f"Demo is up ({seconds:.0f}s). The control plane, the operator and the agent keep running.")
        self.say(f"  export KUBECONFIG={self.state.kubeconfig}")
        self.say("  kubectl get migrationdomains -o wide; kubectl describe mdom arm64-general")
        self.say("  hwcapctl get domains -o yaml")
        self.say(f"  logs: {self.state.state_dir / 'logs'} (operator, agent), {self.state.cluster_dir / 'logs'}")
        self.say("  stop everything: make demo-down")


def describe_injection(pod: dict[str, Any]) -> list[str]:
    """The parts of a stored pod the webhook wrote, as short lines (annotations, init step, commands, affinity)."""
    meta, spec = pod["metadata"], pod["spec"]
    lines = ["annotations:"]
    lines += [f"  {k}: {short(v)}" for k, v in sorted((meta.get("annotations") or {}).items())
              if k.startswith(f"{keys.GROUP}/")]  # fmt: skip
    for init in spec.get("initContainers") or []:
        lines.append(f"initContainers[{init['name']}]: image {init.get('image')}")
        lines.append(f"  command: {json.dumps(init.get('command') or [])}")
    for ctr in spec.get("containers") or []:
        lines.append(f"containers[{ctr['name']}]:")
        lines.append(f"  command: {short(json.dumps(ctr.get('command') or []), 150)}")
        lines.append(f"  args: {short(json.dumps(ctr.get('args') or []), 80)}")
        env = {e["name"]: e.get("value", "") for e in ctr.get("env") or []}
        lines.append("  env: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []  # fmt: skip
    for term in terms:
        exprs = [f"{e['key']} {e['operator']} {e.get('values', [])}" for e in term.get("matchExpressions") or []]
        lines.append("affinity (required): " + " AND ".join(exprs))
    lines.append(f"scheduled on: {spec.get('nodeName')}")
    return lines
