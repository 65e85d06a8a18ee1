"""The operator image assembled without an engine: an OCI index for linux/amd64 and linux/arm64 whose rootfs really
starts the operator (amd64 in a chroot, arm64 under qemu-aarch64-static), with the runtime stage's entrypoint,
user and labels, and an SBOM naming the product and its pinned dependencies.

Part of ``make test`` (marked ``needs_binaries``, so not in ``make unit``): it downloads Debian's Python for two
architectures and the dependency wheels once (cached under ~/.cache/hwcap-operator/images/operator; 1–3 min cold,
~1.5 min warm). ``make images-operator`` runs just these tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tomllib
import urllib.request
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from hwcap_dev.devcluster.build import cache_root
from hwcap_dev.images.oci import MEDIA_INDEX, Platform, build_image, build_index, write_layout
from hwcap_dev.images.operator_image import LABELS, build_operator
from hwcap_dev.images.push import push
from hwcap_dev.images.recipes import BuiltImage
from hwcap_dev.images.registry import RegistryClient, start_registry
from hwcap_dev.paths import REPO_ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_operator(tmp_path_factory.mktemp("operator-image"), cache_root() / "images" / "operator")


def _unpack(built: BuiltImage, arch: str, into: Path) -> Path:
    (image,) = [i for i in built.images if i.platform.architecture == arch]
    for layer in image.layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
            tar.extractall(into, filter="fully_trusted")
    return into


@pytest.mark.needs_binaries
def test_index_has_both_platforms_and_each_config_starts_the_operator_as_nonroot(built: BuiltImage) -> None:
    assert built.index is not None
    index = json.loads(built.index.data)
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    for image in built.images:
        config = json.loads(image.config.data)
        assert config["architecture"] == image.platform.architecture
        assert config["config"]["Entrypoint"] == ["hwcap-operator"]
        assert config["config"]["User"] == "65532:65532"
        assert config["config"]["Labels"] == LABELS


def test_labels_are_the_dockerfile_runtime_stage_labels() -> None:
    parser = DockerfileParser(path=str(REPO_ROOT / "Dockerfile"))
    runtime = parser.structure[max(i for i, item in enumerate(parser.structure) if item["instruction"] == "FROM"):]
    (label,) = [item["value"] for item in runtime if item["instruction"] == "LABEL"]
    words = [w.split("=", 1) for w in shlex.split(label.replace("\\\n", " "))]
    dockerfile = {key: value for key, value in words}
    dockerfile.pop("org.opencontainers.image.revision")  # a build argument: the engine-free build has no git ref
    dockerfile.pop("org.opencontainers.image.base.name")  # no base image here: Debian's .debs instead
    assert dockerfile.pop("org.opencontainers.image.version") == "${VERSION}"
    assert {k: v for k, v in LABELS.items() if k != "org.opencontainers.image.version"} == dockerfile


@pytest.mark.needs_binaries
def test_amd64_rootfs_runs_the_operator_in_a_chroot(built: BuiltImage, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("chroot needs root (the CI runs as root)")
    chroot = shutil.which("chroot")
    assert chroot, "chroot (coreutils)"
    root = _unpack(built, "amd64", tmp_path / "amd64")
    proc = subprocess.run([chroot, "--userspec=65532:65532", str(root), "/usr/local/bin/hwcap-operator", "--help"],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
    proc = subprocess.run([chroot, "--userspec=65532:65532", str(root), "/usr/local/bin/hwcapctl", "--help"],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and "hwcapctl" in proc.stdout, proc.stderr
    proc = subprocess.run([chroot, str(root), "/usr/local/bin/hwcap-exec", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert "hwcap-exec" in proc.stdout + proc.stderr


@pytest.mark.needs_binaries
def test_arm64_rootfs_imports_the_operator_under_qemu(built: BuiltImage, tmp_path: Path) -> None:
    qemu = shutil.which("qemu-aarch64-static")
    assert qemu, "qemu-aarch64-static (tools/system-packages.txt)"
    root = _unpack(built, "arm64", tmp_path / "arm64")
    code = "import hwcap_operator, pydantic_core, orjson, yaml, aiohttp, kopf, platform; print(platform.machine())"
    proc = subprocess.run([qemu, "-L", str(root), str(root / "usr/bin/python3.11"), "-c", code],
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root / "usr/local/lib/python3.11/dist-packages"),
                               "PYTHONHOME": str(root / "usr")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "aarch64"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()  # PEP 503: prometheus_client is prometheus-client


@pytest.mark.needs_binaries
def test_sbom_names_the_product_and_its_pinned_dependencies_with_hashes(built: BuiltImage) -> None:
    doc = json.loads(built.sbom_path.read_text())
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    pypi = [c for c in doc["components"] if c.get("purl", "").startswith("pkg:pypi/")]
    versions = {_normal(c["name"]): c["version"] for c in pypi}
    pins = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in pins:
        name, version = pin.split(";")[0].split("==")
        assert versions[_normal(name)] == version.strip(), name
    assert "hwcap-operator" in versions
    assert all(len(c["hashes"][0]["content"]) == 64 for c in pypi)
    compiled = [c for c in pypi if c["name"].lower().replace("_", "-") == "pydantic-core"]  # one wheel per platform
    files = [c["purl"].split("?file_name=")[1] for c in compiled]
    assert sorted(machine for f in files for machine in ("aarch64", "x86_64") if f.endswith(f"_{machine}.whl")) == [
        "aarch64", "x86_64"]
    assert len({c["hashes"][0]["content"] for c in compiled}) == 2
    debs = {c["purl"] for c in doc["components"] if c.get("purl", "").startswith("pkg:deb/")}
    assert any(p.startswith("pkg:deb/debian/python3.11-minimal@") and p.endswith("arch=amd64") for p in debs)
    assert any(p.startswith("pkg:deb/debian/python3.11-minimal@") and p.endswith("arch=arm64") for p in debs)


def test_oci_layout_holds_the_index_and_every_blob_under_its_digest(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_bytes(b"tool")
    images = [build_image(Platform(arch), [tree], entrypoint=["/bin/tool"]) for arch in ("amd64", "arm64")]
    index = build_index(images)
    layout = write_layout(tmp_path / "oci", images, index, "dev")
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == index.digest and entry["annotations"]["org.opencontainers.image.ref.name"] == "dev"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    wanted = {index.digest} | {b.digest for i in images for b in (*i.blobs(), i.manifest)}
    blobs = (layout / "blobs" / "sha256").iterdir()
    stored = {f"sha256:{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in blobs}
    assert set(stored) == wanted and all(d == f"sha256:{h}" for d, h in stored.items())


@pytest.mark.needs_binaries  # docker-registry (tools/system-packages.txt)
def test_pushed_index_is_served_by_tag_with_both_platforms(built: BuiltImage, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = start_registry(tmp_path / "registry", port, detached=False)
    try:
        ref = push(RegistryClient(f"127.0.0.1:{port}"), built)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/{built.repo}/manifests/{built.tag}",
                                     headers={"Accept": MEDIA_INDEX})
        with urllib.request.urlopen(req, timeout=30) as resp:
            served = json.loads(resp.read())
    finally:
        registry.stop(5)
    assert ref == f"127.0.0.1:{port}/{built.repo}:{built.tag}"
    assert [m["platform"]["architecture"] for m in served["manifests"]] == ["amd64", "arm64"]


@pytest.mark.needs_binaries
def test_a_second_build_of_the_same_checkout_has_the_same_index_digest(built: BuiltImage, tmp_path: Path) -> None:
    again = build_operator(tmp_path, cache_root() / "images" / "operator")
    assert again.digest == built.digest  # registries and pinned pods see one image, not one per build
