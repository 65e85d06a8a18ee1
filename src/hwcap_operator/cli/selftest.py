"""``python -m hwcap_operator.cli.selftest``: what the chart's ``helm test`` pod runs inside the cluster.

Two checks, one line each, exit 0 when both pass and 1 otherwise:

- the MigrationDomain CRD is served (a LIST through the API server answers);
- the webhook answers: an AdmissionReview for a pod in the operator's own namespace (never mutated) sent to
  the webhook Service over TLS, verified with the webhook's CA, comes back allowed, with the same uid and no
  patch, exactly as the API server would see it.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.kube.client import api_client


def crd_served(api: client.ApiClient) -> str | None:
    """None when the API server lists MigrationDomains, else why not."""
    try:
        client.CustomObjectsApi(api).list_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, limit=1)
    except ApiException as exc:
        return f"listing {keys.PLURAL}.{keys.GROUP}/{keys.VERSION}: {exc.status} {exc.reason}"
    return None


def review_for(namespace: str) -> dict[str, Any]:
    """An AdmissionReview of a pod CREATE in ``namespace``, as the API server would send it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hwcap-selftest", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/selftest:1", "command": ["true"]}]},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
                        "namespace": namespace, "name": "hwcap-selftest", "object": pod,
                        "userInfo": {"username": "system:serviceaccount:selftest"}}}  # fmt: skip


def webhook_answers(url: str, ca_file: str | None, namespace: str, timeout: float = 10.0) -> str | None:
    """None when the webhook at ``url`` admits an untouchable pod unchanged, else what went wrong."""
    review = review_for(namespace)
    context = ssl.create_default_context(cafile=ca_file)
    request = urllib.request.Request(url, data=json.dumps(review).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            body = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"POST {url}: {getattr(exc, 'reason', exc)}"
    response = body.get("response") or {}
    if response.get("uid") != review["request"]["uid"]:
        return f"POST {url}: the answer's uid {response.get('uid')!r} is not the review's"
    if response.get("allowed") is not True or response.get("patch"):
        return f"POST {url}: a pod in {namespace} (never injected) was not admitted unchanged: {response}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwcap_operator.cli.selftest", description=__doc__.split("\n")[0],
                                     epilog="example: python -m hwcap_operator.cli.selftest --webhook-url "
                                     "https://hwcap-operator-webhook.hwcap-system.svc:443/mutate-pods "
                                     "--ca-file /tls/ca.crt --namespace hwcap-system")  # fmt: skip
    parser.add_argument("--webhook-url", required=True, help="the webhook Service's https URL with its path")
    parser.add_argument("--ca-file", help="PEM CA that signed the webhook's serving certificate")
    parser.add_argument("--namespace", required=True, help="the operator's namespace (the webhook never mutates it)")
    parser.add_argument("--kubeconfig", help="default: in-cluster service account, else $KUBECONFIG")
    args = parser.parse_args(argv)
    failures = 0
    for name, problem in (
        ("CRD served", crd_served(api_client(args.kubeconfig))),
        ("webhook answers", webhook_answers(args.webhook_url, args.ca_file, args.namespace)),
    ):
        print(f"{'ok' if problem is None else 'FAILED'}: {name}" + (f": {problem}" if problem else ""))
        failures += problem is not None
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
