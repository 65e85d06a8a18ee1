"""Real OCI registries on loopback for tests: Debian's ``docker-registry`` (distribution 2.8) served over
plain HTTP, open, behind htpasswd Basic auth, or behind Bearer tokens from a small token server here.

The token server implements the distribution token protocol (docs "Token Authentication Specification"):
``GET realm?service=..&scope=repository:NAME:ACTIONS`` → ``{"token": JWT}``, ES256-signed, with the signing
certificate in the JWT's ``x5c`` header and in the registry's ``rootcertbundle``. Anonymous callers get
``pull`` on ``public/*`` only; alice (password s3cret) gets what she asks for.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port
from tests.support.waits import wait_for

USER, PASSWORD = "alice", "s3cret"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
Auth = Literal["none", "basic", "bearer"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Signs registry tokens (ES256) with a self-signed certificate the registry trusts."""

    def __init__(self, service: str, issuer: str = "hwcap-test-issuer") -> None:
        self.service, self.issuer = service, issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def token(self, subject: str, access: list[dict[str, Any]]) -> str:
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 600, "nbf": now - 60,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@contextlib.contextmanager
def token_server(issuer: TokenIssuer) -> Iterator[str]:
    """Serve ``/token`` on loopback; yields the realm URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            auth = self.headers.get("Authorization", "")
            user = None
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if (name, password) != (USER, PASSWORD):
                    self.send_response(401)
                    self.end_headers()
                    return
                user = name
            access = []
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                repo, _, actions = rest.rpartition(":")
                wanted = actions.split(",")
                granted = wanted if user else [a for a in wanted if a == "pull" and repo.startswith("public/")]
                if kind == "repository" and granted:
                    access.append({"type": "repository", "name": repo, "actions": granted})
            body = json.dumps({"token": issuer.token(user or "", access)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Registry:
    """One running registry and a client for pushing test images into it."""

    host: str
    auth: Auth
    realm: str | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def _headers(self, repo: str) -> dict[str, str]:
        if self.auth == "basic":
            return {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
        if self.auth == "bearer":
            assert self.realm
            r = requests.get(self.realm, params={"service": "test-registry", "scope": f"repository:{repo}:pull,push"},
                             auth=(USER, PASSWORD), timeout=10)
            r.raise_for_status()
            return {"Authorization": f"Bearer {r.json()['token']}"}
        return {}

    def push_blob(self, repo: str, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        headers = self._headers(repo)
        # the two-step monolithic upload: POST opens a session, PUT ?digest= sends the content
        r = requests.post(f"{self.base}/v2/{repo}/blobs/uploads/", headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        location = urljoin(self.base, r.headers["Location"])
        r = requests.put(location, params={"digest": digest}, data=data, timeout=10,
                         headers={**headers, "Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}

    def push_manifest(self, repo: str, ref: str, doc: dict[str, Any]) -> str:
        body = json.dumps(doc).encode()
        r = requests.put(f"{self.base}/v2/{repo}/manifests/{ref}", data=body, timeout=10,
                         headers={**self._headers(repo), "Content-Type": doc["mediaType"]})
        assert r.status_code == 201, r.text
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def delete_manifest(self, repo: str, digest: str) -> None:
        r = requests.delete(f"{self.base}/v2/{repo}/manifests/{digest}", headers=self._headers(repo), timeout=10)
        assert r.status_code == 202, r.text

    def push_image(self, repo: str, tag: str, entrypoint: list[str] | None, cmd: list[str] | None,
                   arch: str = "arm64") -> str:
        """Push a layer-less image whose config carries ``Entrypoint``/``Cmd``; returns the manifest digest."""
        config = {"architecture": arch, "os": "linux", "config": {"Entrypoint": entrypoint, "Cmd": cmd},
                  "rootfs": {"type": "layers", "diff_ids": []}}
        descriptor = self.push_blob(repo, json.dumps(config).encode())
        return self.push_manifest(repo, tag, {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                              "config": descriptor, "layers": []})


@contextlib.contextmanager
def run_registry(root: Path, auth: Auth, *, deletes: bool = True) -> Iterator[Registry]:
    """Start ``docker-registry serve`` on a free loopback port; stopped (by its pid) on exit. ``deletes=False``:
    it refuses manifest deletes (405), as registries do by default."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry comes from tools/system-packages.txt"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {"version": 0.1, "log": {"level": "error"},
                              "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                                          "delete": {"enabled": deletes}},
                              "http": {"addr": f"127.0.0.1:{port}"}}
    with contextlib.ExitStack() as stack:
        realm = None
        if auth == "basic":
            htpasswd = shutil.which("htpasswd")
            assert htpasswd, "htpasswd comes from apache2-utils in tools/system-packages.txt"
            (root / "htpasswd").write_text(subprocess.run(
                [htpasswd, "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True).stdout)
            config["auth"] = {"htpasswd": {"realm": "basic-realm", "path": str(root / "htpasswd")}}
        elif auth == "bearer":
            issuer = TokenIssuer("test-registry")
            (root / "token-ca.pem").write_bytes(issuer.pem())
            realm = stack.enter_context(token_server(issuer))
            config["auth"] = {"token": {"realm": realm, "service": "test-registry", "issuer": issuer.issuer,
                                        "rootcertbundle": str(root / "token-ca.pem")}}
        (root / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
        log = stack.enter_context(open(root / "registry.log", "w"))
        proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=log)
        def answers() -> bool:
            assert proc.poll() is None, (root / "registry.log").read_text()
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            except requests.ConnectionError:
                return False
            return True

        try:
            wait_for("the registry to answer on /v2/", answers, timeout=30, interval=0.05)  # readiness, not timing
            yield Registry(f"127.0.0.1:{port}", auth, realm)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

