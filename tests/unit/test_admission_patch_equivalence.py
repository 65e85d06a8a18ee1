"""The directly written patch gives exactly the pod the old diff-based patch gave, for generated pods.

The reference is the previous implementation (mutate a deep copy, ``jsonpatch.make_patch``), kept frozen in
``admission_reference_mutate.py``; both patches are applied with the jsonpatch library. Pods are drawn
over everything the mutation reads: commands and args or none (image lookups that resolve or not),
existing env entries with our variables and the fallback variables (plain, ``valueFrom``, unparseable),
``envFrom``, volumes and mounts (including conflicting ones), every shape of affinity, existing
annotations (ours, stale ones), init containers, DaemonSet owners — and the same again after one admission
with a sidecar added (webhook re-invocation).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from admission_reference_mutate import reference_mutate_pod
from admission_support import TableResolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcap_operator import keys
from hwcap_operator.admission import (
    DomainView,
    FallbackPlan,
    ImageEntrypoint,
    LabelSelector,
    MutationConfig,
    mutate_pod,
)

CONFIG = MutationConfig(operator_namespace="hwcap-system", init_image="registry.example/hwcap-operator:0.1.0")
IMAGES = {"nginx:1": ImageEntrypoint(("/docker-entrypoint.sh",), ("nginx",)), "busybox:1": ImageEntrypoint((), ("sh",))}
FALLBACKS = FallbackPlan(glibc_hwcaps=("AVX512F",), godebug_cpu=("avx512f",), openssl_clear={1: 1 << 16})


def domain(fallbacks: bool, policy: str) -> DomainView:
    return DomainView(name="zen", arch="amd64", hwcap=(0x178BFBFF, 0x2, 0, 0), mask_id="m-1",
                      mask_canonical="amd64:hwcap=0x178bfbff,hwcap2=0x2", namespace_selector=LabelSelector.parse({}),
                      fallbacks=FALLBACKS if fallbacks else FallbackPlan(),
                      unresolved_entrypoint="Warn" if policy == "Warn" else "Deny")  # fmt: skip


words = st.sampled_from(["a", "$(A)", "$$x", "--flag=1", ""])
argvs = st.lists(words, max_size=3)
env_names = st.sampled_from(["A", keys.ENV_DOMAIN, keys.ENV_MASK_ID, "GLIBC_TUNABLES", "GODEBUG", "OPENSSL_ia32cap"])
env_values = st.sampled_from(["zen", "m-0", "glibc.cpu.hwcaps=AVX2", "cpu.avx512f=on,x=1", "0x10:~0x4", "junk:::::z"])
env_entry = st.one_of(
    st.fixed_dictionaries({"name": env_names, "value": env_values}),
    st.fixed_dictionaries({"name": env_names, "valueFrom": st.just({"fieldRef": {"fieldPath": "metadata.name"}})}),
)
mount = st.fixed_dictionaries({"name": st.sampled_from(["data", "hwcap-bin"]),
                               "mountPath": st.sampled_from(["/data", "/hwcap/bin", "/hwcap/bin/"])})  # fmt: skip


@st.composite
def container(draw: Any, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": draw(st.sampled_from([*IMAGES, "private:1"]))}
    for field, values in (("command", argvs), ("args", argvs), ("env", st.none() | st.lists(env_entry, max_size=4)),
                          ("volumeMounts", st.none() | st.lists(mount, max_size=2))):  # fmt: skip
        if draw(st.booleans()):
            out[field] = draw(values)
    if draw(st.booleans()):
        out["envFrom"] = [{"configMapRef": {"name": "cm"}}]
    return out


requirement = {"key": "domain.hwcap.dev/zen", "operator": "In", "values": ["true"]}
other = {"key": "disk", "operator": "In", "values": ["ssd"]}
term = st.one_of(st.just({}), st.just({"matchExpressions": None}), st.lists(st.sampled_from([requirement, other]),
                 max_size=2).map(lambda e: {"matchExpressions": e}), st.just({"matchFields": [other]}))  # fmt: skip
affinity = st.one_of(
    st.none(),
    st.just({}),
    st.just({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}),
    st.just({"nodeAffinity": None}),
    st.lists(term, max_size=3).map(
        lambda terms: {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    ),
)
annotation_sets = st.dictionaries(
    st.sampled_from([keys.POD_MASK_ANNOTATION, keys.POD_UNWRAPPED_ANNOTATION, "team/owner", "x~y",
                     f"{keys.POD_ENTRYPOINT_ANNOTATION_PREFIX}app"]),
    st.sampled_from(["v", '["/bin/app"]', "not json"]),
    max_size=3,
)


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [draw(container(f"c{i}")) for i in range(draw(st.integers(1, 3)))]}
    if draw(st.booleans()):
        spec["initContainers"] = [draw(container("init"))]
    if draw(st.booleans()):
        volumes = [{"name": "data", "emptyDir": {}}, {"name": "hwcap-bin", "emptyDir": {}}]
        spec["volumes"] = draw(st.lists(st.sampled_from(volumes), max_size=2))
    if draw(st.booleans()):
        spec["affinity"] = draw(affinity)
    if draw(st.booleans()):
        spec["imagePullSecrets"] = [{"name": "pull"}]
    meta: dict[str, Any] = {"name": "p", "labels": {"app": "p"}}
    if draw(st.booleans()):
        meta["annotations"] = draw(st.none() | annotation_sets)
    if draw(st.booleans()):
        meta["ownerReferences"] = [{"kind": "DaemonSet", "name": "ds", "controller": True}]
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    return pod


def both(pod: dict[str, Any], view: DomainView) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {"namespace": "shop", "namespace_labels": {}, "domains": [view], "config": CONFIG,
                              "resolver": TableResolver(IMAGES)}  # fmt: skip
    untouched = copy.deepcopy(pod)
    direct = mutate_pod(pod, **kwargs)
    assert pod == untouched  # the input is never modified
    return direct, reference_mutate_pod(pod, **kwargs)


def assert_same(pod: dict[str, Any], view: DomainView) -> dict[str, Any] | None:
    direct, reference = both(pod, view)
    assert (direct.allowed, direct.result, direct.message, direct.warnings, direct.events, direct.domain) == (
        reference.allowed, reference.result, reference.message, reference.warnings, reference.events,
        reference.domain)  # fmt: skip
    result = jsonpatch.apply_patch(pod, direct.patch)
    assert result == jsonpatch.apply_patch(pod, reference.patch)
    assert bool(direct.patch) == bool(reference.patch)
    return result if direct.allowed else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods(), st.booleans(), st.sampled_from(["Deny", "Warn"]), st.booleans())
def test_direct_patch_applies_to_the_pod_the_diff_gave(pod: dict[str, Any], fallbacks: bool, policy: str,
                                                        add_sidecar: bool) -> None:  # fmt: skip
    view = domain(fallbacks, policy)
    once = assert_same(pod, view)
    if once is None:
        return
    if add_sidecar:  # a later webhook adds a container, ours is invoked again
        once["spec"]["containers"].append({"name": "proxy", "image": "envoy:1", "command": ["envoy"]})
    assert_same(once, view)
