"""Push images to an OCI registry over plain HTTP on loopback, and run Debian's ``docker-registry`` there.

The dev cluster's images live in a registry on 127.0.0.1 that containerd pulls from like any other (told
to use plain http by a ``hosts.toml``). The push protocol is the distribution spec's monolithic upload:
``POST /v2/<repo>/blobs/uploads/`` then ``PUT <location>?digest=``, then ``PUT /v2/<repo>/manifests/<ref>``.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hwcap_dev.devcluster.processes import ManagedProcess

from .oci import Blob, Image


class RegistryError(RuntimeError):
    """The registry refused a request or did not start; the message says which and why."""


def _request(
    method: str, url: str, data: bytes | None = None, content_type: str | None = None
) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status), dict(resp.headers.items())
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")[:500]
        raise RegistryError(f"{method} {url}: HTTP {err.code}: {body}") from err
    except urllib.error.URLError as err:
        raise RegistryError(f"{method} {url}: {err.reason}") from err


@dataclass(frozen=True)
class RegistryClient:
    """Pushes blobs and manifests to ``http://<host>``."""

    host: str

    def has_blob(self, repo: str, digest: str) -> bool:
        """True when the registry already holds ``digest`` in ``repo`` (so the upload can be skipped)."""
        try:
            status, _ = _request("HEAD", f"http://{self.host}/v2/{repo}/blobs/{digest}")
        except RegistryError:
            return False
        return status == 200

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Upload one blob unless present."""
        if self.has_blob(repo, blob.digest):
            return
        _, headers = _request("POST", f"http://{self.host}/v2/{repo}/blobs/uploads/")
        location = urllib.parse.urljoin(f"http://{self.host}", headers["Location"])
        sep = "&" if "?" in location else "?"
        _request("PUT", f"{location}{sep}digest={urllib.parse.quote(blob.digest)}", blob.data,
                 "application/octet-stream")

    def push_manifest(self, repo: str, ref: str, blob: Blob) -> None:
        """Store a manifest or index under a tag (or its digest)."""
        _request("PUT", f"http://{self.host}/v2/{repo}/manifests/{ref}", blob.data, blob.media_type)

    def push_image(self, repo: str, tag: str, image: Image) -> str:
        """Push one single-platform image; returns ``host/repo@digest``."""
        for blob in image.blobs():
            self.push_blob(repo, blob)
        self.push_manifest(repo, tag, image.manifest)
        return f"{self.host}/{repo}@{image.manifest.digest}"

    def push_index(self, repo: str, tag: str, images: list[Image], index: Blob) -> str:
        """Push every platform's image by digest, then the index under ``tag``; returns ``host/repo@digest``."""
        for image in images:
            for blob in image.blobs():
                self.push_blob(repo, blob)
            self.push_manifest(repo, image.manifest.digest, image.manifest)
        self.push_manifest(repo, tag, index)
        return f"{self.host}/{repo}@{index.digest}"


def start_registry(root: Path, port: int, *, detached: bool) -> ManagedProcess:
    """Start Debian's ``docker-registry`` on ``127.0.0.1:port`` with its data under ``root``; waits for /v2/."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryError("docker-registry is not installed (tools/system-packages.txt lists it)")
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    proc = ManagedProcess("registry", [binary, "serve", str(root / "config.yml")], root / "registry.log",
                          detached=detached)
    proc.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.exited() is not None:
            raise RegistryError(f"docker-registry exited:\n{proc.log_tail()}")
        try:
            _request("GET", f"http://127.0.0.1:{port}/v2/")
            return proc
        except RegistryError:
            time.sleep(0.1)
    proc.stop(5)
    raise RegistryError(f"docker-registry did not answer on 127.0.0.1:{port} within 30s:\n{proc.log_tail()}")
