"""The init image as the build really makes it: an OCI index for linux/amd64 and linux/arm64, each image holding
only a static hwcap-exec for its own architecture, and an SBOM naming exactly those binaries."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest

from hwcap_dev.images.recipes import INIT_SHIM_PATH, build_init

EM = {"amd64": 62, "arm64": 183}  # ELF e_machine: EM_X86_64, EM_AARCH64
PT_INTERP = 3


def _elf_machine_and_static(data: bytes) -> tuple[int, bool]:
    assert data[:4] == b"\x7fELF" and data[4] == 2  # 64-bit
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, PT_INTERP not in types


@pytest.mark.needs_binaries  # make, musl-gcc, aarch64-linux-gnu-gcc (tools/system-packages.txt)
def test_init_index_holds_a_static_shim_per_platform_and_its_sbom_names_them(tmp_path: Path) -> None:
    built = build_init(tmp_path)
    assert built.index is not None
    index = json.loads(built.index.data)
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    digests = {}
    for image in built.images:
        (layer,) = image.layers
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
            files = [m.name for m in tar.getmembers() if m.isfile()]
            assert files == [INIT_SHIM_PATH]  # FROM scratch: nothing else
            member = tar.getmember(INIT_SHIM_PATH)
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
        assert member.mode & 0o111
        machine, static = _elf_machine_and_static(data)
        assert (machine, static) == (EM[image.platform.architecture], True)
        digests[image.platform.architecture] = hashlib.sha256(data).hexdigest()
        assert json.loads(image.config.data)["config"]["Entrypoint"] == [f"/{INIT_SHIM_PATH}"]
    sbom = json.loads(built.sbom_path.read_text())
    listed = {c["name"]: c["hashes"][0]["content"] for c in sbom["components"]}
    assert listed == {f"hwcap-exec ({arch})": digest for arch, digest in digests.items()}


@pytest.mark.needs_binaries  # go, musl-gcc; .debs from the Debian mirror apt already uses
def test_sample_image_runs_its_report_and_its_sbom_lists_what_went_in(tmp_path: Path) -> None:
    from hwcap_dev.images.recipes import SAMPLE_DEBS, build_sample

    built = build_sample(tmp_path / "out", tmp_path / "debs")
    (image,) = built.images
    config = json.loads(image.config.data)["config"]
    assert config["Entrypoint"] == ["/usr/local/bin/cpu-report"] and "Cmd" not in config  # needs a registry lookup
    sbom = json.loads(built.sbom_path.read_text())
    names = {c["name"]: c for c in sbom["components"]}
    debs = sorted((tmp_path / "debs").glob("*.deb"))
    assert len(debs) == len(SAMPLE_DEBS)
    for deb in debs:
        package, version = deb.name.split("_")[:2]
        assert package in SAMPLE_DEBS
        assert names[package]["version"].replace(":", "%3a") == version  # apt-get download escapes the epoch
    gomod = (Path(__file__).resolve().parents[2] / "dev/hwcap_dev/images/src/gocpu/go.mod").read_text()
    pinned = next(line.split()[-1] for line in gomod.splitlines() if "golang.org/x/sys" in line)
    assert names["golang.org/x/sys"]["version"] == pinned
    rootfs = tmp_path / "out" / "sample" / "rootfs"
    gocpu = rootfs / "usr/local/bin/gocpu"
    assert names["cpu-report"]["hashes"][0]["content"] == hashlib.sha256(
        (rootfs / "usr/local/bin/cpu-report").read_bytes()).hexdigest()
    assert _elf_machine_and_static(gocpu.read_bytes()) == (EM["amd64"], True)
