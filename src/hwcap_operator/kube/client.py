"""One way to get a Kubernetes API client: in-cluster credentials in a pod, a kubeconfig elsewhere."""

from __future__ import annotations

import os

import kopf
from kubernetes import client, config

#: The field manager of every write (passed explicitly where the call takes it; the User-Agent below makes
#: the API server derive the same name for any write that does not).
FIELD_MANAGER = "hwcap-operator"


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In a pod (service account mounted) use its token; otherwise ``kubeconfig`` or $KUBECONFIG/~/.kube/config."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api = client.ApiClient(configuration)
    else:
        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    # The default ("OpenAPI-Generator/…") became the field manager of our status writes in managedFields.
    api.user_agent = f"{FIELD_MANAGER}/{_version()}"
    return api


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwcap-operator")
    except PackageNotFoundError:
        return "dev"


def connection_info(api: client.ApiClient) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client configuration the operator uses (``--kubeconfig`` honoured).

    A registry of our own has none of kopf's default login handlers, and those would read only
    $KUBECONFIG/~/.kube/config anyway; a ``--kubeconfig`` flag must mean the same for watches and writes.
    """
    cfg = api.configuration
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        username=cfg.username or None, password=cfg.password or None, scheme=scheme, token=token,
        certificate_path=cfg.cert_file, private_key_path=cfg.key_file,
    )  # fmt: skip
