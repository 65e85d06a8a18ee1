"""Properties of the pod rewrite over generated containers: argv preserved exactly, mutation idempotent."""

from __future__ import annotations

from typing import Any

import jsonpatch
from admission_support import TableResolver, effective_argv
from hypothesis import given, settings
from hypothesis import strategies as st
from test_admission_mutate import WRAPPER

from hwcap_operator.admission import DomainView, ImageEntrypoint, LabelSelector, MutationConfig, mutate_pod

# Arguments with the characters that matter to the kubelet's $(VAR) expansion.
arg = st.text(alphabet=st.sampled_from(list("aAB$()_ -=/'\"")), max_size=8)
argv = st.lists(arg, max_size=4)
DOMAIN = DomainView(name="graviton", arch="arm64", hwcap=(0x8FF, 0x2, 0x0, 0x0), mask_id="m-3f2a",
                    mask_canonical="arm64:hwcap=0x8ff,hwcap2=0x2",
                    namespace_selector=LabelSelector.parse({}), on_failure="fail")
CONFIG = MutationConfig(operator_namespace="hwcap-system", init_image="registry.example/hwcap-operator:0.1.0")


@st.composite
def containers(draw: Any) -> tuple[dict[str, Any], ImageEntrypoint]:
    image = ImageEntrypoint(tuple(draw(argv)), tuple(draw(argv)))
    container: dict[str, Any] = {"name": "c", "image": "img:1"}
    if draw(st.booleans()):
        container["command"] = draw(argv)
    if draw(st.booleans()):
        container["args"] = draw(argv)
    if draw(st.booleans()):
        container["env"] = [{"name": "A", "value": draw(arg)}, {"name": "B_", "value": draw(arg)}]
    return container, image


def admit(pod: dict[str, Any], image: ImageEntrypoint) -> Any:
    return mutate_pod(pod, namespace="shop", namespace_labels={}, domains=[DOMAIN], config=CONFIG,
                      resolver=TableResolver({"img:1": image}))


@settings(max_examples=300, deadline=None)
@given(containers())
def test_argv_is_preserved_and_mutation_is_idempotent(case: tuple[dict[str, Any], ImageEntrypoint]) -> None:
    container, image = case
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [container]}}
    decision = admit(pod, image)
    if not (container.get("command") or image.entrypoint or image.cmd or container.get("args")):
        assert not decision.allowed  # nothing to run at all: the kubelet would fail it too
        return
    once = jsonpatch.apply_patch(pod, decision.patch)
    assert effective_argv(once["spec"]["containers"][0], {"img:1": image}) == WRAPPER + effective_argv(
        container, {"img:1": image}
    )
    assert admit(once, image).patch == []
