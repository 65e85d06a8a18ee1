"""hwcapctl fallbacks and explain preset: what a user sees before applying a domain."""

from __future__ import annotations

import json
import subprocess

from hwcap_operator.cli.verbs_coverage import coverage_document
from hwcap_operator.domain.api import MigrationDomainSpec, MigrationDomainStatus
from hwcap_operator.features import parse_cpuinfo
from hwcap_operator.presets import preset
from tests.cli.test_hwcapctl import hwcapctl
from tests.runtimes.conftest import webhook_env
from tests.support.profiles import PROFILES_DIR

ZEN4 = PROFILES_DIR / "x86_64-amd-zen4-genoa-epyc9654.txt"


def test_fallbacks_env_is_what_the_webhook_injects_and_a_shell_reads_it() -> None:
    out = hwcapctl("fallbacks", "--mask", "preset:x86-64-v3", "--node", str(ZEN4), "-o", "env")
    assert out.returncode == 0, out.stderr
    assert "hides security feature(s)" in out.stderr and "sha_ni" in out.stderr  # Haswell-level v3 on Zen 4
    shell = subprocess.run(["bash", "-c", f"set -a; {out.stdout}\nenv"], capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    got = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    node = parse_cpuinfo(ZEN4.read_text()).mask
    for var, value in webhook_env(preset("x86-64-v3"), node).items():
        assert got[var] == value, var


def test_fallbacks_coverage_names_what_stays_visible() -> None:
    out = hwcapctl("fallbacks", "--mask", "preset:x86-64-v3", "--node", str(ZEN4), "-o", "json")
    coverage = {c["feature"]: c for c in json.loads(out.stdout)["coverage"]}
    avx512f = coverage["avx512f"]
    assert avx512f["hiddenFromAuxv"] is False and "CPUID" in avx512f["channels"]
    assert set(avx512f["coveredBy"]) == {"glibc (glibcTunables)", "Go (goDebug)", "OpenSSL (opensslIa32cap)",
                                         "OpenJDK (javaToolOptions)", "numpy (numpyCpuFeatures)",
                                         "OpenBLAS (openblasCoretype)", "oneDNN (onednnMaxCpuIsa)",
                                         "MKL (mklEnableInstructions)"}  # fmt: skip
    sha = coverage["sha_ni"]
    assert any(u.startswith("Go: key 'sha' is not known to every Go consumer") for u in sha["uncovered"])
    assert any("Rust std_detect" in u for u in sha["uncovered"])


def test_explain_lists_presets_and_a_cpu_models_features() -> None:
    listing = hwcapctl("explain", "presets", "-o", "json")
    names = {p["name"]: p for p in json.loads(listing.stdout)["presets"]}
    assert {"x86-64-v3", "haswell", "icelake-server", "epyc-rome", "neoverse-n1", "cortex-a72"} <= set(names)
    assert "QEMU 7.2" in names["haswell"]["kind"] and "target/i386/cpu.c" in names["haswell"]["kind"]
    haswell = hwcapctl("explain", "preset:haswell")
    assert haswell.returncode == 0, haswell.stderr
    listed = set(haswell.stdout.splitlines()[1].split())
    assert {"aes", "avx2", "fma", "movbe", "rdrand"} <= listed and "avx512f" not in listed
    assert hwcapctl("explain", "preset:pentium9").returncode == 2


def test_a_domains_coverage_follows_its_own_fallbacks() -> None:
    """What `hwcapctl explain --domain` prints, from a domain's spec and published status (no cluster needed)."""
    spec = MigrationDomainSpec.model_validate({
        "arch": "amd64", "workloads": {"namespaceSelector": {}},
        "enforcement": {"userspaceFallbacks": ["glibcTunables", "goDebug"]}})  # fmt: skip
    status = MigrationDomainStatus.model_validate({"droppedFeatures": ["avx512f", "sha_ni", "vme", "clwb"]})
    document = coverage_document("x86", spec, status)
    by_name = {c["feature"]: c for c in document["coverage"]}
    assert set(by_name["avx512f"]["coveredBy"]) == {"glibc (glibcTunables)", "Go (goDebug)"}
    assert "OpenSSL: the domain does not enable opensslIa32cap" in by_name["avx512f"]["uncovered"]
    assert by_name["vme"]["hiddenFromAuxv"] is True  # an AT_HWCAP bit: the mask itself hides it
    assert document["uncoveredEverywhere"] == ["sha_ni", "clwb"]  # Go knows no 'sha' key; nothing knows clwb
