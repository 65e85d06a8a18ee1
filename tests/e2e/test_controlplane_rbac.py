"""Proof RBAC is on: an unprivileged user is denied, a Role grants exactly what it says, and a
ServiceAccount token minted by TokenRequest authenticates as that ServiceAccount."""

from __future__ import annotations

import json

from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess, ToolRunner


def test_unprivileged_user_is_denied_until_a_role_allows(
    control_plane: ClusterAccess, kubectl: ToolRunner, namespace: str
) -> None:
    alice = control_plane.user_kubeconfig("alice", groups=["hwcap-e2e-users"])
    denied = kubectl("get", "pods", "-n", namespace, kubeconfig=alice, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower() and 'User "alice"' in denied.stderr, denied.stderr

    kubectl("create", "role", "pod-reader", "-n", namespace, "--verb=get,list", "--resource=pods")
    kubectl("create", "rolebinding", "alice-reads-pods", "-n", namespace, "--role=pod-reader", "--user=alice")
    allowed = kubectl("get", "pods", "-n", namespace, kubeconfig=alice, check=False)
    assert allowed.returncode == 0, allowed.stderr

    still_denied = kubectl("get", "secrets", "-n", namespace, kubeconfig=alice, check=False)
    assert still_denied.returncode != 0 and "forbidden" in still_denied.stderr.lower()
    elsewhere = kubectl("get", "pods", "-n", "default", kubeconfig=alice, check=False)
    assert elsewhere.returncode != 0 and "forbidden" in elsewhere.stderr.lower()


def test_token_request_authenticates_a_service_account(
    control_plane: ClusterAccess, core_v1: client.CoreV1Api, kubectl: ToolRunner, namespace: str
) -> None:
    core_v1.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata={"name": "robot"}))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = core_v1.create_namespaced_service_account_token("robot", namespace, request).status.token
    robot = control_plane.token_kubeconfig("robot", token)

    who = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=robot).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:robot"
    denied = kubectl("get", "configmaps", "-n", namespace, kubeconfig=robot, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
