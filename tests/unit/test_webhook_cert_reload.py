"""A rotated webhook certificate (cert-manager rewrites the mounted Secret) is served without a restart."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from tests.support.ports import free_port

from hwcap_dev.devcluster.pki import CertificateAuthority
from hwcap_operator.kube import http_server
from hwcap_operator.kube.metrics import OperatorMetrics


def _served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:  # fmt: skip
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def _issue(ca: CertificateAuthority, directory: Path) -> tuple[Path, Path, int]:
    pair = ca.issue("webhook", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True)
    cert, key = pair.write(directory, "tls")
    return cert, key, int(x509.load_pem_x509_certificate(cert.read_bytes()).serial_number)


def test_the_webhook_serves_a_rotated_certificate_without_restarting(tmp_path: Path) -> None:
    ca = CertificateAuthority.generate()
    ca_file, _ = ca.write(tmp_path / "ca")
    cert, key, first = _issue(ca, tmp_path / "tls")

    async def scenario() -> tuple[int, int]:
        port = free_port()
        context = http_server.server_ssl_context(cert, key)
        app = http_server.webhook_app(lambda _: http_server.AdmissionOutcome(True, "untouched"),
                                           OperatorMetrics())  # fmt: skip
        runner = await http_server.start_site(app, "127.0.0.1", port, context)
        reload = asyncio.create_task(http_server.reload_certificate_forever(context, cert, key, 0.05))
        try:
            before = await asyncio.to_thread(_served_serial, port, ca_file)
            _, _, _ = _issue(ca, tmp_path / "tls")  # rewrite the same files, as a Secret update does
            os.utime(cert, (1e9, 2e9))  # make sure the mtime differs even on coarse-grained filesystems
            for _ in range(100):
                await asyncio.sleep(0.05)
                after = await asyncio.to_thread(_served_serial, port, ca_file)
                if after != before:
                    return before, after
            return before, before
        finally:
            reload.cancel()
            await runner.cleanup()

    before, after = asyncio.run(scenario())
    assert before == first
    assert after != first
    assert after == int(x509.load_pem_x509_certificate(cert.read_bytes()).serial_number)
