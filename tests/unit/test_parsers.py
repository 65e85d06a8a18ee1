"""Parsers on the real dumps and on bad input of every kind (expectations from the raw text)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from functools import reduce
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tests.cli.test_hwcapctl import hwcapctl
from tests.support.profiles import dump_names, raw_feature_words, read_profile

from hwcap_operator import auxv as A
from hwcap_operator import features as F
from hwcap_operator.domain.baseline import common_features
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX as P
from hwcap_operator.mask import FeatureMask, intersect_all

ARM_SAMPLE = ["arm64-aws-graviton2-neoverse-n1.txt", "arm64-aws-graviton3-neoverse-v1.txt",
              "arm64-aws-graviton4-neoverse-v2.txt", "arm64-neoverse-n2-github-runner.txt",
              "arm64-ampere-ampereone.txt"]


@pytest.mark.parametrize("name", dump_names())
def test_every_profile_parses_without_error(name: str) -> None:
    fs = F.parse_cpuinfo(read_profile(name), name)
    assert fs.errors == ()
    assert fs.arch == {"x86_64": "amd64"}.get(name.split("-")[0], name.split("-")[0])
    if fs.arch in {"arm64", "amd64", "s390x"}:
        assert fs.unknown == ()
        if "second block" not in read_profile(name):
            assert set(fs.names) == raw_feature_words(name)


def test_intersection_of_arm64_dumps_is_the_set_intersection_of_their_features_words() -> None:
    expected = reduce(set.__and__, (raw_feature_words(n) for n in ARM_SAMPLE))
    mask = intersect_all(F.parse_cpuinfo(read_profile(n), n).mask for n in ARM_SAMPLE)
    assert set(mask.names()) == expected
    assert len(mask.names()) == len(expected)


def test_multi_block_dump_keeps_what_all_blocks_share() -> None:
    name = "x86_64-amd-zen3-milan-epyc7763-azure-vm.txt"
    blocks = [set(ln.partition(":")[2].split()) for ln in read_profile(name).splitlines() if ln.startswith("Flags:")]
    fs = F.parse_cpuinfo(read_profile(name), name)
    assert len(blocks) == 2 and set(fs.names) == blocks[0] & blocks[1]
    assert any("differ" in w for w in fs.warnings)


def test_riscv_isa_single_letters_become_hwcap_bits_rest_reported() -> None:
    fs = F.parse_cpuinfo(read_profile("riscv64-eswin-eic7700-megrez.txt"), "megrez")
    assert set(fs.names) == {"i", "m", "a", "f", "d", "c"}
    assert "h" in fs.unknown and "zba" in fs.unknown
    assert fs.mask.hwcap[0] == sum(1 << (ord(c) - ord("a")) for c in "imafdc")


def test_ppc_cpuinfo_has_no_feature_list_and_says_so(profile: Callable[[str], str]) -> None:
    fs = F.parse_cpuinfo(profile("ppc64le-power9.txt"), "p9")
    assert fs.arch == "ppc64le" and fs.features == () and "no feature list" in fs.warnings[0]
    assert "vsx" in fs.unobserved


def test_bad_token_is_reported_by_name_and_the_rest_is_kept() -> None:
    fs = F.parse_cpuinfo("processor : 0\nFeatures : fp asimd sv$e2 newthing\nCPU implementer : 0x41\n", "bad.txt")
    assert [(e.source, e.token) for e in fs.errors] == [("bad.txt", "sv$e2")]
    assert "sv$e2" in str(fs.errors[0])
    assert fs.names == ["fp", "asimd"] and fs.unknown == ("newthing",)
    assert not fs.ok


@pytest.mark.parametrize(
    ("text", "token"),
    [("", ""), ("hello world\n", "hello world"), ("processor : 0\nCPU implementer : 0x41\n", "features/flags"),
     ("Architecture: sparc64\nFlags: a b\n", "sparc64")],
)
def test_uninterpretable_cpuinfo_raises_naming_input_and_token(text: str, token: str) -> None:
    with pytest.raises(F.FeatureParseError) as e:
        F.parse_cpuinfo(text, "input.txt")
    assert e.value.source == "input.txt" and e.value.token == token and "input.txt" in str(e.value)


def test_forced_arch_must_match_the_text(profile: Callable[[str], str]) -> None:
    with pytest.raises(F.FeatureParseError, match="not amd64"):
        F.parse_cpuinfo(profile("arm64-aws-graviton2-neoverse-n1.txt"), "g2", arch="amd64")


# ----- auxv ------------------------------------------------------------------------------------

def _pack(fmt: str, pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack(fmt, t, v) for t, v in pairs)


@pytest.mark.parametrize(("layout", "fmt"), [("64le", "<QQ"), ("64be", ">QQ"), ("32le", "<II"), ("32be", ">II")])
def test_auxv_layouts_are_detected(layout: str, fmt: str) -> None:
    big = 0xFFFF_F000 if fmt.endswith("II") else 0xFFFF_8000_0000_1000
    data = _pack(fmt, [(33, big), (16, 0x8FF), (6, 4096), (26, 0x2), (25, big - 64), (0, 0)])
    v = A.parse_auxv(data, "auxv")
    assert v.layout == layout
    assert v.hwcap == (0x8FF, 0x2, 0, 0) and v.present == frozenset({0, 1})
    assert v.get(6) == 4096


def test_auxv_pr_get_auxv_padding_and_missing_word() -> None:
    data = _pack("<QQ", [(16, 7), (0, 0)]) + bytes(16 * 10)
    v = A.parse_auxv(data)
    assert v.hwcap == (7, 0, 0, 0) and v.present == frozenset({0}) and v.warnings == ()


def test_auxv_duplicate_last_wins_and_is_reported() -> None:
    v = A.parse_auxv(_pack("<QQ", [(16, 1), (26, 5), (16, 3), (0, 0)]))
    assert v.hwcap[0] == 3 and any("duplicate AT_HWCAP" in w for w in v.warnings)


@pytest.mark.parametrize(("data", "problem"), [(b"", "empty"), (b"\x10\x00\x00", "truncated"),
                                               (_pack("<QQ", [(16, 1), (0, 0)])[:-4], "truncated"),
                                               (b"\xff" * 32, "plausible")])
def test_auxv_bad_input_raises_naming_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(A.AuxvParseError, match=problem) as e:
        A.parse_auxv(data, "/proc/1/auxv")
    assert e.value.source == "/proc/1/auxv"


def test_auxv_of_this_process_matches_the_page_size() -> None:
    with open("/proc/self/auxv", "rb") as fh:
        v = A.parse_auxv(fh.read(), "/proc/self/auxv")
    assert v.get(6) == os.sysconf("SC_PAGE_SIZE")  # AT_PAGESZ
    assert 0 in v.present


def test_build_auxv_is_the_inverse() -> None:
    entries = [(33, 1 << 40), (16, 0xABC), (29, 1)]
    assert A.parse_auxv(A.build_auxv(entries, "64be")).entries == tuple(entries)


# ----- NFD labels, NodeFeature, Node ------------------------------------------------------------

def _labels_for(name: str) -> dict[str, str]:
    return {P + t.upper(): "true" for t in raw_feature_words(name)} | {"kubernetes.io/hostname": "n"}


def test_nfd_labels_of_an_arm64_node() -> None:
    name = "arm64-aws-graviton3-neoverse-v1.txt"
    fs = F.parse_nfd_labels(_labels_for(name) | {"kubernetes.io/arch": "arm64"}, "node-a")
    assert fs.arch == "arm64" and set(fs.names) == raw_feature_words(name) and fs.ok
    assert "gcs" in fs.unobserved and "poe" in fs.unobserved and "sve2" not in fs.unobserved


def test_nfd_labels_arch_inferred_and_unknown_kept_and_bad_value_named() -> None:
    labels = {P + "ASIMD": "true", P + "FP": "true", P + "NEWTHING": "true", P + "SVE": "yes"}
    fs = F.parse_nfd_labels(labels, "labels.yaml")
    assert fs.arch == "arm64" and fs.names == ["fp", "asimd"] and fs.unknown == ("NEWTHING",)
    assert [e.token for e in fs.errors] == [P + "SVE=yes"]


def test_nfd_x86_labels_are_filtered_level_labels_expand() -> None:
    fs = F.parse_nfd_labels({P + "AVX2": "true", P + "X86_64_V3": "true", "kubernetes.io/arch": "amd64"})
    assert {"avx2", "cmov", "cx16", "abm", "pni", "xsave"} <= set(fs.names)
    assert "avx512f" not in fs.names
    fs2 = F.parse_nfd_labels({P + "AVX2": "true"}, arch="amd64")
    assert "cmov" in fs2.unobserved and "popcnt" in fs2.unobserved


def test_nfd_labels_without_any_arch_hint_raise() -> None:
    with pytest.raises(F.FeatureParseError, match="architecture"):
        F.parse_nfd_labels({"kubernetes.io/hostname": "x"}, "empty-node")


def _node_feature(names: list[str], vendor: str | None = None) -> dict[str, object]:
    attrs = {"cpu.model": {"elements": {"vendor_id": vendor}}} if vendor else {}
    return {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature", "metadata": {"name": "n"},
            "spec": {"features": {"flags": {"cpu.cpuid": {"elements": {n: {} for n in names}}},
                                  "attributes": attrs}}}


def test_node_feature_flags_are_unfiltered() -> None:
    fs = F.parse_node_feature(_node_feature(["CMOV", "SSE42", "AVX2", "X87", "BOGUS"], vendor="Intel"), "nf")
    assert fs.arch == "amd64" and {"cmov", "sse4_2", "avx2", "fpu"} == set(fs.names)
    assert fs.unknown == ("BOGUS",) and "cmov" not in fs.unobserved


def test_node_feature_missing_path_is_named() -> None:
    obj = _node_feature(["FP"])
    del obj["spec"]["features"]["flags"]  # type: ignore[index]
    with pytest.raises(F.FeatureParseError) as e:
        F.parse_node_feature(obj, "nf.yaml")
    assert e.value.token == "spec.features.flags" and "missing field" in str(e.value)


@pytest.mark.parametrize("parse", [F.parse_node, F.parse_node_feature])
def test_node_objects_of_another_kind_or_no_mapping_are_named(parse: Callable[..., F.FeatureSet]) -> None:
    with pytest.raises(F.FeatureParseError) as e:
        parse({"kind": "Pod", "metadata": {"name": "p"}}, "p.yaml")
    assert e.value.token == "Pod" and "expected kind" in str(e.value)
    with pytest.raises(F.FeatureParseError) as e:
        parse(["not", "a", "mapping"], "l.yaml")
    assert e.value.token == "list" and "must be a mapping" in str(e.value)


def test_node_yaml_document_and_label_lines() -> None:
    name = "arm64-aws-graviton2-neoverse-n1.txt"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "g2", "labels": _labels_for(name)},
            "status": {"nodeInfo": {"architecture": "arm64"}}}
    fs = F.parse_document(yaml.safe_dump(node), "g2.yaml")
    assert set(fs.names) == raw_feature_words(name) and "g2" in fs.source
    lines = "\n".join(f"{k}={v}" for k, v in _labels_for(name).items()) + "\nkubernetes.io/arch=arm64\n"
    assert set(F.parse_document(lines, "labels.txt").names) == raw_feature_words(name)
    assert F.parse_document(read_profile(name), name).mask == F.parse_cpuinfo(read_profile(name)).mask


def test_unsupported_object_kind_is_named() -> None:
    with pytest.raises(F.FeatureParseError, match="Pod"):
        F.parse_document("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "pod.yaml")


def test_mask_from_parsed_labels_equals_mask_from_cpuinfo() -> None:
    name = "arm64-neoverse-n2-archspec.txt"
    a = F.parse_nfd_labels(_labels_for(name), arch="arm64").mask
    assert a == F.parse_cpuinfo(read_profile(name)).mask
    assert a == FeatureMask.from_names("arm64", raw_feature_words(name))


# ----- properties ---------------------------------------------------------------------------------

_ARM_NAMES = [f.name for f in F.features("arm64")]


@given(st.lists(st.sampled_from(_ARM_NAMES), unique=True))
def test_cpuinfo_of_any_named_arm64_set_round_trips(names: list[str]) -> None:
    text = "processor\t: 0\nFeatures\t: " + " ".join(names) + "\nCPU implementer\t: 0x41\n"
    fs = F.parse_cpuinfo(text, "gen")
    assert set(fs.names) == set(names) and fs.unknown == () and fs.ok
    assert fs.mask == FeatureMask.from_names("arm64", names)


@given(
    st.sampled_from([("64le", "<QQ", 64), ("64be", ">QQ", 64), ("32le", "<II", 32), ("32be", ">II", 32)]),
    st.data(),
)
def test_auxv_entries_round_trip_in_every_layout(layout: tuple[str, str, int], data: st.DataObject) -> None:
    name, fmt, bits = layout
    pairs = data.draw(st.lists(st.tuples(st.integers(1, 51), st.integers(0, (1 << bits) - 1)), max_size=20))
    v = A.parse_auxv(_pack(fmt, [*pairs, (0, 0)]), "gen", layout=name)  # type: ignore[arg-type]
    assert list(v.entries) == pairs
    for word, at in enumerate((16, 26, 29, 30)):
        last = [val for t, val in pairs if t == at]
        assert v.hwcap[word] == (last[-1] if last else 0)
        assert (word in v.present) == bool(last)


# ------------------------------------------------ a source's silence is not absence (real nfd-worker output)

NFD_DATA = Path(__file__).resolve().parents[1] / "data" / "nfd"


def _nfd_and_cpuinfo() -> tuple[F.FeatureSet, F.FeatureSet]:
    node_feature = yaml.safe_load((NFD_DATA / "nodefeature.yaml").read_text())
    return (F.parse_node_feature(node_feature, "nodefeature.yaml"),
            F.parse_cpuinfo((NFD_DATA / "cpuinfo.txt").read_text(), "cpuinfo.txt"))  # fmt: skip


def test_nfd_and_cpuinfo_of_one_machine_never_contradict_each_other() -> None:
    """Each says 'absent' only about what it could see: all they disagree on is what one of them cannot show."""
    nfd, cpuinfo = _nfd_and_cpuinfo()
    lines = (line.partition(":") for line in (NFD_DATA / "cpuinfo.txt").read_text().splitlines())
    raw = next(set(value.split()) for key, _, value in lines if key.strip() == "flags")
    assert len(raw) == 106 and len(nfd.mask.names()) < len(raw)  # NFD's 67 flags name fewer features
    assert nfd.mask <= cpuinfo.possible, (nfd.mask - cpuinfo.possible).names()
    assert cpuinfo.mask <= nfd.possible, (cpuinfo.mask - nfd.possible).names()
    assert {"tsc", "pae", "apic", "ht", "clwb", "clflushopt", "rdpid", "fsgsbase"} <= set(nfd.unobserved)


def test_a_node_known_only_through_nfd_keeps_the_kernels_at_hwcap() -> None:
    nfd, cpuinfo = _nfd_and_cpuinfo()
    naive = intersect_all([nfd.mask, cpuinfo.mask])
    common = common_features([(nfd.mask, nfd.possible), (cpuinfo.mask, cpuinfo.possible)])
    assert naive.hwcap[0] != 0x178BFBFF  # the issue: silence taken for absence
    assert common.hwcap[0] == 0x178BFBFF == cpuinfo.mask.hwcap[0]
    assert {"clwb", "rdpid"} <= set(common.names())  # cpuinfo saw them, NFD cannot say


def test_hwcapctl_check_accepts_a_preset_on_an_nfd_only_node() -> None:
    out = hwcapctl("check", "--mask", "preset:x86-64-v3", "--node", str(NFD_DATA / "nodefeature.yaml"), "-o", "json")
    document = json.loads(out.stdout)
    assert out.returncode == 0 and document["ok"] is True and document["missing"] == []
    assert {"tsc", "pae"} <= set(document["unconfirmed"]) and document["notes"]
