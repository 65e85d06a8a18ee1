"""The devcluster CA issues certificates Kubernetes accepts: CN = user, O = groups, SANs, usages, chain."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hwcap_dev.devcluster.kubeconfig import build_kubeconfig, write_kubeconfig
from hwcap_dev.devcluster.pki import CertificateAuthority


def test_client_certificate_carries_user_and_groups_and_chains_to_the_ca() -> None:
    ca = CertificateAuthority.generate()
    pair = ca.issue("alice", organizations=["team-a", "system:masters"], client=True)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["alice"]
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "team-a", "system:masters"
    ]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_certificate_has_the_requested_names() -> None:
    ca = CertificateAuthority.generate()
    cert = x509.load_pem_x509_certificate(
        ca.issue("api", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True).cert_pem
    )
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_a_certificate_must_have_a_purpose() -> None:
    with pytest.raises(ValueError, match="server, a client"):
        CertificateAuthority.generate().issue("nobody")


def test_ca_round_trips_through_files(tmp_path: Path) -> None:
    ca = CertificateAuthority.generate()
    crt, key = ca.write(tmp_path)
    again = CertificateAuthority.load(crt, key)
    assert again.cert_pem == ca.cert_pem
    x509.load_pem_x509_certificate(again.issue("bob", client=True).cert_pem).verify_directly_issued_by(ca.cert)


def test_kubeconfig_inlines_credentials_and_is_private(tmp_path: Path) -> None:
    ca = CertificateAuthority.generate()
    pair = ca.issue("alice", client=True)
    path = write_kubeconfig(
        tmp_path / "kc",
        build_kubeconfig("https://127.0.0.1:6443", ca.cert_pem, "alice", cert_pem=pair.cert_pem, key_pem=pair.key_pem),
    )
    assert path.stat().st_mode & 0o077 == 0
    loaded = yaml.safe_load(path.read_text())
    user = loaded["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == pair.key_pem
    assert base64.b64decode(loaded["clusters"][0]["cluster"]["certificate-authority-data"]) == ca.cert_pem
    assert loaded["current-context"] == loaded["contexts"][0]["name"]


def test_kubeconfig_wants_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="either a client certificate or a token"):
        build_kubeconfig("https://x", b"", "u", cert_pem=b"c", key_pem=b"k", token="t")
    with pytest.raises(ValueError, match="both cert_pem and key_pem"):
        build_kubeconfig("https://x", b"", "u", cert_pem=b"c")
