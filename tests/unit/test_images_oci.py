"""Engine-free image assembly: what a registry and containerd rely on (digests, diff_ids, index platforms),
and SBOMs that list what went in."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from hwcap_dev.images import sbom
from hwcap_dev.images.debs import DebPackage
from hwcap_dev.images.oci import MEDIA_INDEX, MEDIA_MANIFEST, Platform, build_image, build_index, layer_from_tree


def _tree(root: Path) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"\x7fELF fake")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("hello\n")
    return root


def test_layer_is_reproducible_and_its_diff_id_is_the_uncompressed_tar(tmp_path: Path) -> None:
    first, diff_id = layer_from_tree(_tree(tmp_path / "a"))
    second, _ = layer_from_tree(_tree(tmp_path / "b"))  # same files, other directory, other mtimes
    assert first.digest == second.digest
    raw = gzip.decompress(first.data)
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["etc", "etc/motd", "usr", "usr/bin", "usr/bin/tool"]
    tool = members["usr/bin/tool"]
    assert (tool.uid, tool.gid, tool.mode & 0o777, tool.mtime) == (0, 0, 0o755, 0)


def test_image_config_lists_layers_and_runtime_settings(tmp_path: Path) -> None:
    image = build_image(Platform("arm64"), [_tree(tmp_path / "t")], entrypoint=["/usr/bin/tool"], user="65534")
    manifest = json.loads(image.manifest.data)
    config = json.loads(image.config.data)
    assert manifest["mediaType"] == MEDIA_MANIFEST
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in manifest["layers"]] == [layer.digest for layer in image.layers]
    assert (config["architecture"], config["os"]) == ("arm64", "linux")
    assert config["config"]["Entrypoint"] == ["/usr/bin/tool"] and "Cmd" not in config["config"]
    assert config["config"]["User"] == "65534"
    assert len(config["rootfs"]["diff_ids"]) == 1


def test_index_names_each_platforms_manifest(tmp_path: Path) -> None:
    images = [build_image(Platform(arch), [_tree(tmp_path / arch)]) for arch in ("amd64", "arm64")]
    index = json.loads(build_index(images).data)
    assert index["mediaType"] == MEDIA_INDEX
    assert [(m["digest"], m["platform"]["architecture"]) for m in index["manifests"]] == [
        (images[0].manifest.digest, "amd64"), (images[1].manifest.digest, "arm64")]


def test_sbom_lists_packages_and_binaries_that_went_in(tmp_path: Path) -> None:
    binary = tmp_path / "hwcap-exec"
    binary.write_bytes(b"binary")
    doc = sbom.bom("hwcap/sample", "dev", [
        sbom.deb_component(DebPackage("openssl", "3.0.17-1~deb12u2", "amd64")),
        sbom.file_component("hwcap-exec", "dev", binary),
    ])
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert doc["metadata"]["component"]["name"] == "hwcap/sample"
    purls = [c.get("purl") for c in doc["components"]]
    assert "pkg:deb/debian/openssl@3.0.17-1~deb12u2?arch=amd64" in purls
    hashes = [c["hashes"][0]["content"] for c in doc["components"] if "hashes" in c]
    assert hashes == [hashlib.sha256(b"binary").hexdigest()]
