"""hwcapctl as a user runs it: a real subprocess, real dumps, exit codes 0 / 1 / 2 and what it prints."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.profiles import PROFILES_DIR, raw_feature_words

ARM64_DUMPS = [
    "arm64-aws-graviton2-neoverse-n1.txt",
    "arm64-aws-graviton3-neoverse-v1.txt",
    "arm64-aws-graviton4-neoverse-v2.txt",
    "arm64-ampere-ampereone.txt",
]


def hwcapctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hwcapctl", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "hwcap_operator.cli.main"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def features_line(name: str) -> set[str]:
    """The dump's own words, read with nothing but str.split: the independent expectation."""
    return raw_feature_words(name)


def test_baseline_of_arm64_generations_is_exactly_their_common_features() -> None:
    result = hwcapctl("baseline", *(str(PROFILES_DIR / d) for d in ARM64_DUMPS), "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = set.intersection(*(features_line(d) for d in ARM64_DUMPS))
    assert set(doc["mask"]["features"]) == expected
    for entry, dump in zip(doc["inputs"], ARM64_DUMPS, strict=True):
        assert set(entry["dropped"]) == features_line(dump) - expected
    # Graviton3 loses pointer authentication in a domain with Graviton2: the user is told.
    assert any("paca" in w and "graviton3" in w for w in doc["warnings"])


def test_baseline_table_names_the_mask_and_what_each_input_dropped() -> None:
    result = hwcapctl("baseline", str(PROFILES_DIR / ARM64_DUMPS[0]), str(PROFILES_DIR / ARM64_DUMPS[1]))
    assert result.returncode == 0, result.stderr
    assert "MASK-ID" in result.stdout and "sve" in result.stdout


def test_check_tells_why_a_graviton3_process_cannot_move_to_a_graviton2() -> None:
    g3 = str(PROFILES_DIR / "arm64-aws-graviton3-neoverse-v1.txt")
    g2 = str(PROFILES_DIR / "arm64-aws-graviton2-neoverse-n1.txt")
    moved = hwcapctl("check", "--mask", g3, "--node", g2, "-o", "json")
    assert moved.returncode == 1
    doc = json.loads(moved.stdout)
    assert set(doc["missing"]) == features_line(g3.rsplit("/", 1)[1]) - features_line(g2.rsplit("/", 1)[1])
    back = hwcapctl("check", "--mask", g2, "--node", g3)
    assert back.returncode == 0 and back.stdout.startswith("OK")


def test_check_accepts_the_json_that_baseline_prints(tmp_path: Path) -> None:
    base = hwcapctl("baseline", *(str(PROFILES_DIR / d) for d in ARM64_DUMPS[:2]), "-o", "json")
    saved = tmp_path / "baseline.json"
    saved.write_text(base.stdout)
    for dump in ARM64_DUMPS[:2]:
        assert hwcapctl("check", "--mask", str(saved), "--node", str(PROFILES_DIR / dump)).returncode == 0


def simulate(kernel: str) -> dict:
    g2 = PROFILES_DIR / "arm64-aws-graviton2-neoverse-n1.txt"
    g3 = PROFILES_DIR / "arm64-aws-graviton3-neoverse-v1.txt"
    result = hwcapctl("simulate", "--mask", str(g2), "--node", str(g3), "--kernel", kernel, "-o", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def _proc(doc: dict, name: str) -> dict:
    return next(p for p in doc["processes"] if p["name"] == name)


def test_simulate_shows_the_v4_compat_regression_and_the_v5_fix() -> None:
    v4, v5 = simulate("v4"), simulate("v5")
    v4_codes = {f["code"] for f in v4["findings"]}
    v5_codes = {f["code"] for f in v5["findings"]}
    # v4: the AArch32 child receives the arm64 words (the masked native AT_HWCAP), not COMPAT_HWCAP.
    assert "compat-hwcaps-corrupted" in v4_codes
    assert _proc(v4, "compat-child")["seen"][0] == _proc(v4, "entrypoint")["seen"][0]
    assert not _proc(v4, "compat-child")["as_expected"]
    # v5: the compat child gets its own words and inheritance stops at the arch switch (reported).
    assert "compat-hwcaps-corrupted" not in v5_codes
    assert "cross-abi-exec-drops-mask" in v5_codes
    assert _proc(v5, "compat-child")["as_expected"]
    assert not _proc(v5, "compat-child")["masked"]
    # Native descendants see node AND mask under both.
    for doc in (v4, v5):
        assert _proc(doc, "grandchild")["as_expected"] and _proc(doc, "grandchild")["masked"]


def test_simulate_on_an_unpatched_kernel_reports_that_nothing_is_inherited() -> None:
    doc = simulate("none")
    assert "inheritance-unsupported" in {f["code"] for f in doc["findings"]}
    assert not _proc(doc, "worker")["masked"]


def test_explain_names_bits_from_the_kernel_table() -> None:
    # AT_HWCAP bit 0 is FP, bit 1 ASIMD, bit 30 PACA (arch/arm64/include/uapi/asm/hwcap.h).
    result = hwcapctl("explain", "--arch", "aarch64", "--hwcap", hex((1 << 0) | (1 << 1) | (1 << 30)), "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["names"] == ["fp", "asimd", "paca"]
    assert doc["bits"][2]["note"] == "security"


def test_auxv_decodes_this_process_vector() -> None:
    result = hwcapctl("auxv", "/proc/self/auxv", "--arch", "amd64", "-o", "json")
    assert result.returncode == 0, result.stderr
    types = {e["type"] for e in json.loads(result.stdout)["entries"]}
    assert {"AT_HWCAP", "AT_PAGESZ", "AT_RANDOM"} <= types


def _write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


@pytest.mark.parametrize(
    ("case", "args", "named"),
    [
        ("missing file", ["baseline", "/nonexistent/cpuinfo"], "/nonexistent/cpuinfo"),
        ("unknown arch", ["explain", "--arch", "sparc64", "--hwcap", "0x1"], "sparc64"),
        ("bad hex word", ["explain", "--arch", "arm64", "--hwcap", "0xZZ"], "0xZZ"),
        ("word over 64 bits", ["explain", "--arch", "arm64", "--hwcap", hex(1 << 64)], hex(1 << 64)),
        ("bad mask string", ["check", "--mask", "arm64:hwcap=0xq", "--node", "{g2}"], "0xq"),
        ("unknown preset", ["check", "--mask", "preset:armv99", "--node", "{g2}"], "armv99"),
        ("mixed arches", ["baseline", "{g2}", "{zen2}"], "mix architectures"),
        ("bad NFD label value", ["baseline", "{bad_label}"], "feature.node.kubernetes.io/cpu-cpuid.ASIMD=maybe"),
        ("bad NFD label name", ["baseline", "{bad_label_name}"], "cpu-cpuid."),
        ("cpuinfo without features", ["baseline", "{no_features}"], "{no_features}"),
        ("truncated auxv", ["auxv", "{short_auxv}", "--arch", "arm64"], "13 bytes"),
        ("NodeFeature without flags", ["baseline", "{bad_nodefeature}"], "{bad_nodefeature}"),
        ("usage error", ["baseline"], "FILE"),
    ],
)
def test_bad_input_exits_2_and_names_it(tmp_path: Path, case: str, args: list[str], named: str) -> None:
    files = {
        "g2": str(PROFILES_DIR / "arm64-aws-graviton2-neoverse-n1.txt"),
        "zen2": str(PROFILES_DIR / "x86_64-amd-zen2-rome-epyc7742.txt"),
        "bad_label": _write(tmp_path, "labels.txt", "kubernetes.io/arch=arm64\n"
                            "feature.node.kubernetes.io/cpu-cpuid.ASIMD=maybe\n"),
        "bad_label_name": _write(tmp_path, "labels2.txt", "kubernetes.io/arch=arm64\n"
                                 "feature.node.kubernetes.io/cpu-cpuid.=true\n"),
        "no_features": _write(tmp_path, "cpuinfo.txt", "processor\t: 0\nBogoMIPS\t: 50.00\n"),
        "short_auxv": _write(tmp_path, "auxv.bin", struct.pack("<QQ", 16, 0xFF)[:13]),
        "bad_nodefeature": _write(tmp_path, "nf.yaml", "apiVersion: nfd.k8s-sigs.io/v1alpha1\nkind: NodeFeature\n"
                                  "metadata: {name: n1, labels: {nfd.node.kubernetes.io/node-name: n1}}\n"
                                  "spec: {features: {flags: {cpu.cpuid: 7}}}\n"),
    }
    argv = [a.format(**files) for a in args]
    result = hwcapctl(*argv)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    assert named.format(**files) in result.stderr, (case, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
