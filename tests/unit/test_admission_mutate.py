"""The pod mutation end to end: apply the returned JSON patch and look at the pod a user would see.

Argv equivalence is checked against an independent model of what the kubelet runs (command/args/image
config table and ``$(VAR)`` expansion, written here from the Kubernetes rules, not from the code under test).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from admission_support import TableResolver, effective_argv

from hwcap_operator import keys
from hwcap_operator.admission import (
    DomainView,
    FallbackPlan,
    ImageEntrypoint,
    ImageRequest,
    LabelSelector,
    MutationConfig,
    NoResolver,
    mutate_pod,
)

CONFIG = MutationConfig(operator_namespace="hwcap-system", init_image="registry.example/hwcap-operator:0.1.0")
SHIM = "/hwcap/bin/hwcap-exec"
WORDS = (0x8FF, 0x2, 0x0, 0x0)
DOMAIN = DomainView(
    name="graviton",
    arch="arm64",
    hwcap=WORDS,
    mask_id="m-3f2a",
    mask_canonical="arm64:hwcap=0x8ff,hwcap2=0x2",
    namespace_selector=LabelSelector.parse({"matchLabels": {"hwcap.dev/domain": "graviton"}}),
    on_failure="fail",
)
NS_LABELS = {"hwcap.dev/domain": "graviton", "kubernetes.io/metadata.name": "shop"}
MEMBER = {"key": "domain.hwcap.dev/graviton", "operator": "In", "values": ["true"]}
# What the wrapper must be, spelled out from the shim's documented CLI (issue 5).
WRAPPER = [SHIM, "--hwcap", "0x8ff", "--hwcap2", "0x2", "--hwcap3", "0x0", "--hwcap4", "0x0", "--on-failure=fail", "--"]


IMAGES = {
    "busybox:1.36": ImageEntrypoint(entrypoint=(), cmd=("sh",)),
    "nginx:1.27": ImageEntrypoint(entrypoint=("/docker-entrypoint.sh",), cmd=("nginx", "-g", "daemon off;")),
    "weird:1": ImageEntrypoint(entrypoint=("/bin/sh", "-c", "echo $(HOME) $$ $HWCAP_DOMAIN costs 5$"), cmd=()),
}


def make_pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "labels": {"app": "web"}},
        "spec": {"containers": list(containers), **spec},
    }


def admit(pod: dict[str, Any], resolver: Any = None, domain: DomainView = DOMAIN, **kw: Any) -> Any:
    return mutate_pod(
        pod,
        namespace="shop",
        namespace_labels=NS_LABELS,
        domains=[domain],
        config=kw.get("config", CONFIG),
        resolver=resolver or TableResolver(IMAGES),
    )


def patched(pod: dict[str, Any], decision: Any) -> dict[str, Any]:
    assert decision.allowed, decision.message
    result: dict[str, Any] = jsonpatch.apply_patch(pod, decision.patch)
    return result


# ---------------------------------------------------------------------------------- argv equivalence


@pytest.mark.parametrize(
    "container",
    [
        {"name": "c", "image": "nginx:1.27", "command": ["/app", "--port=$(PORT)"], "args": ["x", "$$(lit)"],
         "env": [{"name": "PORT", "value": "8080"}]},
        {"name": "c", "image": "nginx:1.27", "command": ["/app"]},  # image CMD ignored
        {"name": "c", "image": "nginx:1.27", "args": ["nginx", "-T"]},  # ENTRYPOINT + args
        {"name": "c", "image": "nginx:1.27"},  # ENTRYPOINT + CMD
        {"name": "c", "image": "busybox:1.36"},  # CMD only
        {"name": "c", "image": "busybox:1.36", "args": ["echo", "hi"]},  # no ENTRYPOINT: args are the argv
        {"name": "c", "image": "weird:1"},  # image argv with $ that the kubelet must not expand
        {"name": "c", "image": "nginx:1.27", "command": [], "args": []},  # empty lists count as unset
    ],
)
def test_wrapped_argv_is_wrapper_plus_original_argv(container: dict[str, Any]) -> None:
    pod = make_pod(container)
    before = effective_argv(container, IMAGES)
    after = patched(pod, admit(pod))["spec"]["containers"][0]
    assert effective_argv(after, IMAGES) == WRAPPER + before


def test_init_containers_of_the_pod_are_wrapped_after_the_install_step() -> None:
    pod = make_pod(
        {"name": "app", "image": "nginx:1.27", "command": ["/app"]},
        initContainers=[{"name": "migrate", "image": "busybox:1.36", "args": ["sh", "-c", "true"]}],
    )
    out = patched(pod, admit(pod))
    inits = out["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["hwcap-install", "migrate"]
    assert effective_argv(inits[1], IMAGES) == [*WRAPPER, "sh", "-c", "true"]


# ---------------------------------------------------------------------------------- pod shape


def test_bare_pod_gets_volume_install_step_mounts_env_affinity_annotations() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    original = copy.deepcopy(pod)
    out = patched(pod, admit(pod))
    assert pod == original  # the input is never modified
    spec = out["spec"]
    assert spec["volumes"] == [{"name": "hwcap-bin", "emptyDir": {"sizeLimit": "16Mi"}}]
    install = spec["initContainers"][0]
    assert install["image"] == CONFIG.init_image
    assert install["command"] == ["/usr/local/bin/hwcap-exec", "--install", SHIM]
    assert {"name": "hwcap-bin", "mountPath": "/hwcap/bin"} in install["volumeMounts"]
    app = spec["containers"][0]
    assert {"name": "hwcap-bin", "mountPath": "/hwcap/bin", "readOnly": True} in app["volumeMounts"]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["HWCAP_DOMAIN"] == "graviton" and env["HWCAP_MASK_ID"] == "m-3f2a"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [MEMBER]}]
    ann = out["metadata"]["annotations"]
    assert ann[keys.POD_DOMAIN_ANNOTATION] == "graviton"
    assert ann[keys.POD_MASK_ID_ANNOTATION] == "m-3f2a"
    assert ann[keys.POD_MASK_ANNOTATION] == DOMAIN.mask_canonical
    assert ann[keys.POD_HWCAP_WORDS_ANNOTATION] == "0x8ff,0x2,0x0,0x0"
    assert keys.POD_UNWRAPPED_ANNOTATION not in ann


def test_install_step_satisfies_pod_security_restricted() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    out = patched(pod, admit(pod))
    sc = out["spec"]["initContainers"][0]["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    # the user's containers get no securityContext change at all, so no capability is ever added
    assert "securityContext" not in out["spec"]["containers"][0]


def test_affinity_is_anded_into_every_existing_term_and_nothing_else_changes() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}
            ],
        },
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []},
    }
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]}, affinity=copy.deepcopy(affinity))
    out = patched(pod, admit(pod))["spec"]["affinity"]
    terms = out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"] == [{"key": "zone", "operator": "In", "values": ["a"]}, MEMBER]
    assert terms[1]["matchFields"] == affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][1]["matchFields"]
    assert terms[1]["matchExpressions"] == [MEMBER]
    assert out["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == affinity["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert out["podAntiAffinity"] == affinity["podAntiAffinity"]


def test_on_failure_follows_the_domain() -> None:
    warn = DomainView(**{**DOMAIN.__dict__, "on_failure": "warn"})
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    assert "--on-failure=warn" in patched(pod, admit(pod, domain=warn))["spec"]["containers"][0]["command"]


# ---------------------------------------------------------------------------------- idempotency


def test_mutating_twice_equals_mutating_once() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27"}, volumes=[{"name": "data", "emptyDir": {}}])
    once = patched(pod, admit(pod))
    again = admit(once)
    assert again.allowed and again.patch == [] and again.result == "untouched"


def test_copy_of_injected_pod_without_annotations_is_not_wrapped_twice() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    once = patched(pod, admit(pod))
    stripped = copy.deepcopy(once)
    del stripped["metadata"]["annotations"]
    again = patched(stripped, admit(stripped))
    assert again == once  # only the (truthful) annotations come back; nothing is wrapped or added twice


def test_reinvocation_wraps_a_sidecar_added_by_a_later_webhook() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    once = patched(pod, admit(pod))
    once["spec"]["containers"].append({"name": "proxy", "image": "envoy:1", "command": ["envoy", "-c", "x"]})
    decision = admit(once)
    twice = patched(once, decision)
    assert twice["spec"]["containers"][1]["command"] == [*WRAPPER, "envoy", "-c", "x"]
    assert twice["spec"]["containers"][0] == once["spec"]["containers"][0]
    assert twice["spec"]["initContainers"] == once["spec"]["initContainers"]
    assert twice["spec"]["volumes"] == once["spec"]["volumes"]
    assert twice["spec"]["affinity"] == once["spec"]["affinity"]


def test_pod_wrapped_under_another_mask_is_left_alone_with_a_warning() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    once = patched(pod, admit(pod))
    newer = DomainView(**{**DOMAIN.__dict__, "hwcap": (0xFF, 0, 0, 0), "mask_id": "m-new"})
    for copy_ in (once, {**once, "metadata": {**once["metadata"], "annotations": {}}}):
        decision = admit(copy_, domain=newer)
        assert decision.allowed and decision.patch == []
        assert any("m-new" in w for w in decision.warnings)


def test_daemonset_pods_get_a_placement_warning() -> None:
    pod = make_pod({"name": "agent", "image": "busybox:1.36", "command": ["/agent"]})
    pod["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "agent", "controller": True,
                                           "apiVersion": "apps/v1", "uid": "u"}]
    decision = admit(pod)
    assert decision.allowed and any("DaemonSet" in w and "domain.hwcap.dev/graviton" in w for w in decision.warnings)


# ---------------------------------------------------------------------------------- entrypoint resolution


def test_resolver_called_once_per_image_with_pull_secrets_and_arch() -> None:
    resolver = TableResolver(IMAGES)
    pod = make_pod(
        {"name": "a", "image": "nginx:1.27"},
        {"name": "b", "image": "nginx:1.27", "args": ["-v"]},
        {"name": "c", "image": "busybox:1.36", "command": ["sh"]},
        imagePullSecrets=[{"name": "regcred"}, {"name": "other"}],
    )
    patched(pod, admit(pod, resolver))
    assert resolver.requests == [ImageRequest("nginx:1.27", "shop", ("regcred", "other"), "arm64")]


def test_annotation_overrides_registry() -> None:
    resolver = TableResolver({})
    pod = make_pod({"name": "app", "image": "private.example/app:1", "args": ["--serve"]})
    pod["metadata"]["annotations"] = {"hwcap.dev/entrypoint.app": '["/bin/app", "--json"]'}
    out = patched(pod, admit(pod, resolver))
    assert effective_argv(out["spec"]["containers"][0], {}) == [*WRAPPER, "/bin/app", "--json", "--serve"]
    assert resolver.requests == []


def test_annotation_object_form_gives_cmd_too() -> None:
    pod = make_pod({"name": "app", "image": "private.example/app:1"})
    pod["metadata"]["annotations"] = {"hwcap.dev/entrypoint.app": '{"entrypoint": ["/e"], "cmd": ["serve"]}'}
    out = patched(pod, admit(pod, TableResolver({})))
    assert effective_argv(out["spec"]["containers"][0], {}) == [*WRAPPER, "/e", "serve"]


@pytest.mark.parametrize("value", ["not json", '{"entrypoint": "x"}', "[1, 2]", '{"args": []}'])
def test_bad_annotation_denies_naming_it(value: str) -> None:
    pod = make_pod({"name": "app", "image": "private.example/app:1"})
    pod["metadata"]["annotations"] = {"hwcap.dev/entrypoint.app": value}
    decision = admit(pod, TableResolver({}))
    assert not decision.allowed and "hwcap.dev/entrypoint.app" in decision.message


def test_unresolved_entrypoint_deny_policy_names_container_and_image() -> None:
    pod = make_pod({"name": "app", "image": "private.example/app:1"})
    decision = admit(pod, NoResolver())
    assert not decision.allowed and decision.result == "denied"
    assert "'app'" in decision.message and "private.example/app:1" in decision.message
    assert "hwcap.dev/entrypoint.app" in decision.message  # tells the user how to fix it


def test_unresolved_entrypoint_warn_policy_leaves_that_container_unwrapped() -> None:
    warn = DomainView(**{**DOMAIN.__dict__, "unresolved_entrypoint": "Warn"})
    pod = make_pod(
        {"name": "app", "image": "private.example/app:1"},
        {"name": "side", "image": "nginx:1.27", "command": ["/side"]},
    )
    decision = admit(pod, TableResolver({}), domain=warn)
    out = patched(pod, decision)
    app, side = out["spec"]["containers"]
    assert "command" not in app and "volumeMounts" not in app
    assert side["command"][: len(WRAPPER)] == WRAPPER
    assert out["metadata"]["annotations"][keys.POD_UNWRAPPED_ANNOTATION] == "app"
    assert any("'app'" in w and "manifest unknown" in w for w in decision.warnings)  # the resolver's reason
    assert [(e.type, e.reason, e.domain) for e in decision.events] == [("Warning", "EntrypointUnresolved", "graviton")]
    # placement and env still apply: the pod is part of the domain
    assert {"name": "HWCAP_DOMAIN", "value": "graviton"} in app["env"]


def test_all_unresolved_under_warn_adds_no_install_step() -> None:
    warn = DomainView(**{**DOMAIN.__dict__, "unresolved_entrypoint": "Warn"})
    pod = make_pod({"name": "app", "image": "private.example/app:1"})
    out = patched(pod, admit(pod, TableResolver({}), domain=warn))
    assert "initContainers" not in out["spec"] and "volumes" not in out["spec"]
    assert out["metadata"]["annotations"][keys.POD_DOMAIN_ANNOTATION] == "graviton"


# ---------------------------------------------------------------------------------- fallbacks in env


X86 = DomainView(
    name="x86",
    arch="amd64",
    hwcap=(0x178BFBFF, 0x2, 0, 0),
    mask_id="m-x86",
    mask_canonical="amd64:...",
    namespace_selector=LabelSelector.parse({}),
    fallbacks=FallbackPlan(glibc_hwcaps=("AVX2",), godebug_cpu=("avx2",), openssl_clear={1: 1 << 5}),
)


def test_fallbacks_are_merged_into_existing_env_of_every_container() -> None:
    pod = make_pod(
        {
            "name": "go",
            "image": "busybox:1.36",
            "command": ["/srv"],
            "env": [
                {"name": "GODEBUG", "value": "http2client=0"},
                {"name": "GLIBC_TUNABLES", "value": "glibc.malloc.check=3"},
            ],
        },
        {"name": "plain", "image": "busybox:1.36", "command": ["/srv"]},
    )
    out = patched(pod, admit(pod, domain=X86))
    go, plain = ({e["name"]: e.get("value") for e in c["env"]} for c in out["spec"]["containers"])
    assert go["GODEBUG"] == "http2client=0,cpu.avx2=off"
    assert go["GLIBC_TUNABLES"] == "glibc.malloc.check=3:glibc.cpu.hwcaps=-AVX2"
    assert go["OPENSSL_ia32cap"] == ":~0x20"
    assert plain["GODEBUG"] == "cpu.avx2=off" and plain["OPENSSL_ia32cap"] == ":~0x20"
    # the install step runs unmasked and needs none of this
    assert "env" not in out["spec"]["initContainers"][0]


def test_value_from_cannot_be_merged_and_is_left_with_a_warning() -> None:
    secret_ref = {"secretKeyRef": {"name": "s", "key": "godebug"}}
    pod = make_pod(
        {"name": "go", "image": "busybox:1.36", "command": ["/srv"],
         "env": [{"name": "GODEBUG", "valueFrom": secret_ref}], "envFrom": [{"configMapRef": {"name": "cm"}}]},
    )
    decision = admit(pod, domain=X86)
    out = patched(pod, decision)
    env = out["spec"]["containers"][0]["env"]
    assert {"name": "GODEBUG", "valueFrom": secret_ref} in env
    assert any("GODEBUG" in w and "valueFrom" in w for w in decision.warnings)
    assert any("GLIBC_TUNABLES" in w and "envFrom" in w for w in decision.warnings)


def test_unparseable_openssl_value_is_kept_with_a_warning() -> None:
    pod = make_pod({"name": "c", "image": "busybox:1.36", "command": ["/srv"],
                    "env": [{"name": "OPENSSL_ia32cap", "value": "banana"}]})
    decision = admit(pod, domain=X86)
    env = {e["name"]: e["value"] for e in patched(pod, decision)["spec"]["containers"][0]["env"]}
    assert env["OPENSSL_ia32cap"] == "banana"
    assert any("banana" in w for w in decision.warnings)


# ---------------------------------------------------------------------------------- conflicts


def test_volume_name_conflict_denies() -> None:
    pod = make_pod({"name": "c", "image": "busybox:1.36", "command": ["/srv"]},
                   volumes=[{"name": "hwcap-bin", "emptyDir": {}}])
    decision = admit(pod)
    assert not decision.allowed and "hwcap-bin" in decision.message


def test_container_unresolved_before_gets_the_install_step_when_it_resolves_on_reinvocation() -> None:
    warn = DomainView(**{**DOMAIN.__dict__, "unresolved_entrypoint": "Warn"})
    pod = make_pod({"name": "app", "image": "private.example/app:1"})
    first = patched(pod, admit(pod, TableResolver({}), domain=warn))
    assert "initContainers" not in first["spec"]
    second = patched(first, admit(first, TableResolver({"private.example/app:1": ImageEntrypoint(("/app",))}),
                                  domain=warn))
    assert [c["name"] for c in second["spec"]["initContainers"]] == ["hwcap-install"]
    assert second["spec"]["volumes"] == [{"name": "hwcap-bin", "emptyDir": {"sizeLimit": "16Mi"}}]
    assert effective_argv(second["spec"]["containers"][0], {}) == [*WRAPPER, "/app"]
    assert keys.POD_UNWRAPPED_ANNOTATION not in second["metadata"]["annotations"]


def test_install_command_is_configurable() -> None:
    config = MutationConfig(operator_namespace="x", init_image="op:1",
                            install_argv=("cp", "/usr/local/bin/hwcap-exec", SHIM))
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    out = patched(pod, admit(pod, config=config))
    assert out["spec"]["initContainers"][0]["command"] == ["cp", "/usr/local/bin/hwcap-exec", SHIM]


# ---------------------------------------------------------------------------------- Pod Security "restricted"

_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standards "restricted" profile (kubernetes.io/docs/concepts/security/
    pod-security-standards), the checks that depend on pod spec fields we could touch."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    out = []
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}: {kinds}")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.append(key)
    for c in (spec.get("initContainers") or []) + spec["containers"]:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            out.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccomp {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities not dropped")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: capabilities added {caps['add']}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort")
    return out


def test_a_restricted_pod_stays_restricted_after_injection() -> None:
    hardened = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = make_pod(
        {"name": "app", "image": "nginx:1.27", "securityContext": hardened},
        initContainers=[{"name": "setup", "image": "busybox:1.36", "command": ["true"], "securityContext": hardened}],
        securityContext={"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
    )
    assert restricted_violations(pod) == []
    out = patched(pod, admit(pod))
    assert restricted_violations(out) == []
    # and the install step would pass even in a pod that sets nothing at pod level
    bare = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    install = patched(bare, admit(bare))["spec"]["initContainers"][0]
    assert restricted_violations({"spec": {"containers": [install]}}) == []


# ------------------------------------------------------------------------ names and annotations a pod may forge


def test_a_pods_own_init_container_named_like_the_install_step_is_not_taken_for_ours() -> None:
    # Taken for ours, it would skip wrapping, add no install step, and could even supply hwcap-exec itself.
    for impostor in ({"name": "hwcap-install", "image": "busybox:1.36", "command": ["sh", "-c", "true"]},
                     {"name": "hwcap-install", "image": "evil:1", "command": CONFIG.install_command}):  # fmt: skip
        pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]}, initContainers=[impostor])
        decision = admit(pod)
        assert not decision.allowed
        assert "hwcap-install" in decision.message and "rename" in decision.message


def test_a_pod_forging_our_annotations_is_still_wrapped() -> None:
    pod = make_pod({"name": "app", "image": "nginx:1.27", "command": ["/app"]})
    pod["metadata"]["annotations"] = {keys.POD_DOMAIN_ANNOTATION: "graviton", keys.POD_MASK_ID_ANNOTATION: "m-3f2a"}
    out = patched(pod, admit(pod))
    assert out["spec"]["containers"][0]["command"] == [*WRAPPER, "/app"]
    assert out["spec"]["initContainers"][0]["name"] == "hwcap-install"
