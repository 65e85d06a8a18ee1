"""Pod validation on simulated nodes built from real dumps. Expected features come from the dump text and
the kernel's bit table (execmodel_dumps), expected severities from the issue's rules."""

from __future__ import annotations

import json

import pytest
from execmodel_dumps import (
    ARM64_SECURITY,
    COMPAT_WORDS,
    GRAVITON2,
    GRAVITON3,
    ZEN2,
    ZEN4,
    arm64_words,
)
from tests.support.profiles import raw_feature_words, read_profile

from hwcap_operator.execmodel.kernel import CAP_SYS_RESOURCE, PatchLevel
from hwcap_operator.execmodel.pod_simulation import NodeSpec, Validation, validate
from hwcap_operator.features.cpuinfo import parse_cpuinfo
from hwcap_operator.mask import FeatureMask

G2, G3 = arm64_words(GRAVITON2), arm64_words(GRAVITON3)


def catalog_mask(name: str) -> FeatureMask:
    return parse_cpuinfo(read_profile(name), source=name).mask


def node(name: str, patch: PatchLevel = "v5", **kw: object) -> NodeSpec:
    compat = COMPAT_WORDS if name.startswith("arm64") else None
    return NodeSpec.from_mask(name, catalog_mask(name), patch=patch, compat_hwcap=compat, **kw)


def codes(v: Validation) -> dict[str, str]:
    return {f.code: f.severity for f in v.findings}


def finding(v: Validation, code: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    f = next(f for f in v.findings if f.code == code)
    return f.features, f.processes


def view(v: Validation) -> dict[str, tuple[int, ...]]:
    return {p.name: p.seen for p in v.processes}


BASELINE = FeatureMask.from_words("arm64", *(a & b for a, b in zip(G2, G3, strict=True)))


def test_catalog_reads_the_graviton_dumps_like_the_kernel_table() -> None:
    assert catalog_mask(GRAVITON2).hwcap[:3] == G2
    assert catalog_mask(GRAVITON3).hwcap[:3] == G3


def test_v5_native_tree_sees_node_and_mask_and_security_loss_is_reported() -> None:
    v = validate(BASELINE, node(GRAVITON3))
    expected = tuple(a & b for a, b in zip(G2, G3, strict=True))
    seen = view(v)
    assert [seen[n] for n in ("entrypoint", "worker", "grandchild", "setuid-helper")] == [expected] * 4
    assert v.apply.method == "PR_SET_MM_MAP"  # restricted pod: uid 65534, no capability
    hidden = raw_feature_words(GRAVITON3) - raw_feature_words(GRAVITON2)
    assert set(finding(v, "security-feature-hidden")[0]) == hidden & ARM64_SECURITY == {"dit", "paca", "pacg"}
    assert codes(v)["security-feature-hidden"] == "error" and not v.ok


def test_v5_arm64_compat_child_drops_the_mask() -> None:
    v = validate(BASELINE, node(GRAVITON3))
    assert view(v)["compat-child"] == COMPAT_WORDS
    assert view(v)["compat-grandchild"] == G3
    assert codes(v)["cross-abi-exec-drops-mask"] == "warning"
    assert set(finding(v, "cross-abi-exec-drops-mask")[1]) == {"compat-child", "compat-grandchild"}


def test_mask_not_subset_of_node_names_the_missing_features() -> None:
    v = validate(catalog_mask(GRAVITON3), node(GRAVITON2))
    missing = raw_feature_words(GRAVITON3) - raw_feature_words(GRAVITON2)
    assert set(finding(v, "feature-missing-on-node")[0]) == missing
    assert codes(v)["feature-missing-on-node"] == "error"


def test_own_mask_on_own_node_is_ok() -> None:
    v = validate(catalog_mask(GRAVITON2), node(GRAVITON2))
    assert v.ok
    assert {f.severity for f in v.findings} <= {"warning", "info"}
    assert "setuid-inherits-mask" in codes(v)


def test_unpatched_kernel_is_reported() -> None:
    v = validate(BASELINE, node(GRAVITON3, patch="none"))
    assert codes(v)["inheritance-unsupported"] == "error"
    assert view(v)["worker"] == G3
    assert {"entrypoint", "worker", "grandchild"} <= set(finding(v, "inheritance-unsupported")[1])


def test_v4_regression_is_reported() -> None:
    v = validate(BASELINE, node(GRAVITON3, patch="v4"))
    assert view(v)["compat-child"] != COMPAT_WORDS
    assert finding(v, "compat-hwcaps-corrupted")[1] == ("compat-child",)
    assert "compat-grandchild" in finding(v, "mask-not-enforced")[1]


def test_without_checkpoint_restore_only_cap_sys_resource_applies() -> None:
    spec = node(GRAVITON2, checkpoint_restore=False)
    v = validate(catalog_mask(GRAVITON2), spec)
    assert codes(v)["mask-not-applied"] == "error"
    root = validate(catalog_mask(GRAVITON2), spec, uid=0, caps={CAP_SYS_RESOURCE})
    assert root.apply.method == "PR_SET_MM_AUXV" and "mask-not-applied" not in codes(root)


def test_x86_cpuid_features_need_fallbacks() -> None:
    mask = catalog_mask(ZEN2) & catalog_mask(ZEN4)
    v = validate(mask, node(ZEN4))
    dropped = set(finding(v, "x86-cpuid-unhideable")[0])
    assert "avx512f" in dropped  # AVX-512 is not in AT_HWCAP (docs/kernel.md#x86-cpuid)
    assert dropped <= raw_feature_words(ZEN4) - raw_feature_words(ZEN2)
    assert codes(v)["glibc-hwcap-invisible"] == "info"
    assert view(v)["compat-child"] == view(v)["worker"]  # ia32: same words, masked (docs/kernel.md#compat-auxv)
    unknown = NodeSpec("zen4", "amd64", catalog_mask(ZEN4).hwcap)
    assert codes(validate(mask, unknown))["x86-cpuid-unhideable"] == "warning"


def test_node_without_compat_runs_no_compat_child() -> None:
    v = validate(BASELINE, node(GRAVITON3, compat=False))
    assert not any(p.abi == "compat" for p in v.processes)
    assert "cross-abi-exec-drops-mask" not in codes(v)


def test_arch_mismatch_names_the_node() -> None:
    with pytest.raises(ValueError, match="zen4"):
        validate(BASELINE, NodeSpec("zen4", "amd64", (1, 0, 0, 0)))


def test_result_serialises() -> None:
    data = json.loads(json.dumps(validate(BASELINE, node(GRAVITON3, patch="v4")).to_dict()))
    assert data["mask"] == BASELINE.canonical() and data["ok"] is False
    assert all(f["severity"] in ("error", "warning", "info") and f["code"] for f in data["findings"])
    assert data["trace"][0]["op"].startswith("spawn")
