"""OCI image assembly in pure Python: a directory tree becomes a layer, a layer list an image, images an index.

No engine and no daemon: a layer is a gzip'd tar written with :mod:`tarfile` (sorted entries, zero mtimes,
root ownership, so the same files always give the same digest), the config and manifest are the JSON the
OCI image spec describes, and an index ties one image per platform together. :mod:`.registry` pushes the
result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    """The ``sha256:<hex>`` content address of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """Content and the descriptor pointing at it."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        """Content address."""
        return digest_of(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """The OCI descriptor of this blob (``platform`` and ``annotations`` go in ``extra``)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def layer_from_tree(root: Path) -> tuple[Blob, str]:
    """A reproducible gzip'd tar of everything under ``root`` (paths relative to it) and its diff_id
    (the digest of the uncompressed tar, which the image config lists)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=_reset)
    tar_bytes = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(tar_bytes)
    return Blob(MEDIA_LAYER, packed.getvalue()), digest_of(tar_bytes)


@dataclass(frozen=True)
class Platform:
    """``linux/amd64``-style platform of one image."""

    architecture: str
    os: str = "linux"

    def as_dict(self) -> dict[str, str]:
        """The ``platform`` object of an index entry."""
        return {"architecture": self.architecture, "os": self.os}


@dataclass(frozen=True)
class Image:
    """One single-platform image: layers, config, manifest, ready to push."""

    platform: Platform
    layers: tuple[Blob, ...]
    config: Blob
    manifest: Blob
    annotations: Mapping[str, str] = field(default_factory=dict)

    def blobs(self) -> list[Blob]:
        """Every blob the manifest references (pushed before the manifest)."""
        return [*self.layers, self.config]


def build_image(
    platform: Platform,
    trees: Sequence[Path],
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    user: str | None = None,
    workdir: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """An image whose layers are ``trees`` in order (later trees overlay earlier ones)."""
    layers: list[Blob] = []
    diff_ids: list[str] = []
    for tree in trees:
        blob, diff_id = layer_from_tree(tree)
        layers.append(blob)
        diff_ids.append(diff_id)
    runtime: dict[str, Any] = {"Env": list(env)}
    if entrypoint is not None:
        runtime["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        runtime["Cmd"] = list(cmd)
    if user is not None:
        runtime["User"] = user
    if workdir is not None:
        runtime["WorkingDir"] = workdir
    if labels:
        runtime["Labels"] = dict(labels)
    config_doc = {
        **platform.as_dict(),
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "hwcap_dev.images (no engine)"} for _ in trees],
    }
    config = Blob(MEDIA_CONFIG, json.dumps(config_doc, sort_keys=True).encode())
    manifest_doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        manifest_doc["annotations"] = dict(annotations)
    manifest = Blob(MEDIA_MANIFEST, json.dumps(manifest_doc, sort_keys=True).encode())
    return Image(platform, tuple(layers), config, manifest, dict(annotations or {}))


def build_index(images: Sequence[Image], annotations: Mapping[str, str] | None = None) -> Blob:
    """An OCI index with one entry per platform (what ``docker buildx --platform a,b`` pushes)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [image.manifest.descriptor(platform=image.platform.as_dict()) for image in images],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return Blob(MEDIA_INDEX, json.dumps(doc, sort_keys=True).encode())


def write_layout(root: Path, images: Sequence[Image], index: Blob, ref_name: str) -> Path:
    """Write an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``) holding ``index`` and its
    images, so tools that read one (``skopeo copy oci:<root>:<ref> docker://...``, ``crane push``) can push it."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in [b for image in images for b in (*image.blobs(), image.manifest)] + [index]:
        (blobs / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = index.descriptor(annotations={"org.opencontainers.image.ref.name": ref_name})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry]}))
    return root
