"""The chart's ``helm test`` pod: a test hook, never injected, restricted, pointed at the webhook Service with
the webhook's CA, running the selftest program under the operator's account."""

from __future__ import annotations

from chartlib import NAMESPACE, Render

from hwcap_operator.cli import selftest


def test_helm_test_pod_calls_the_webhook_service_with_its_ca(render: Render) -> None:
    rendered = render()
    [pod] = [o for o in rendered.of_kind("Pod") if o["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    assert pod["metadata"]["labels"]["hwcap.dev/inject"] == "false"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    [container] = spec["containers"]
    assert container["command"] == ["python", "-m", selftest.__name__]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    service = rendered.one("Service", "hw-hwcap-operator-webhook")
    assert args["--webhook-url"] == f"https://{service['metadata']['name']}.{NAMESPACE}.svc:443/mutate-pods"
    assert service["spec"]["ports"][0]["port"] == 443
    assert args["--namespace"] == NAMESPACE
    mount = next(m for m in container["volumeMounts"] if args["--ca-file"].startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "hw-hwcap-operator-webhook-tls"
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
