"""Entrypoint resolution against real registries: Debian's ``docker-registry`` on loopback, plain HTTP, one
open, one behind htpasswd Basic auth, one behind Bearer tokens (the Docker Hub / GHCR scheme). Images are
pushed by the test over the registry API (tests/support/registry.py)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonpatch
import pytest
from tests.support.ports import free_port
from tests.support.registry import OCI_INDEX, OCI_MANIFEST, PASSWORD, USER, Registry, run_registry

from hwcap_operator.admission import (
    DomainView,
    ImageEntrypoint,
    ImageRequest,
    LabelSelector,
    MutationConfig,
    Unresolvable,
    mutate_pod,
)
from hwcap_operator.admission.image_refs import credentials_for, parse_image_ref
from hwcap_operator.kube.registry import OciResolver


@dataclass(frozen=True)
class Registries:
    open: Registry
    basic: Registry
    bearer: Registry

    def hosts(self) -> list[str]:
        return [self.open.host, self.basic.host, self.bearer.host]


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("registry")
    with contextlib.ExitStack() as stack:
        yield Registries(*(stack.enter_context(run_registry(root / a, a)) for a in ("none", "basic", "bearer")))


def dockerconfig(host: str, user: str, password: str) -> dict[str, Any]:
    """A decoded ``.dockerconfigjson`` as ``kubectl create secret docker-registry`` writes it."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {host: {"username": user, "password": password, "auth": auth}}}


class Secrets:
    """The glue's view of pull secrets: namespace → name → decoded dockerconfigjson."""

    def __init__(self, data: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self.data = data or {}

    def __call__(self, namespace: str, names: Any) -> list[dict[str, Any]]:
        return [self.data[namespace][n] for n in names if n in self.data.get(namespace, {})]


def resolver(regs: Registries, secrets: Secrets | None = None, **kw: Any) -> OciResolver:
    return OciResolver(secrets or Secrets(), insecure_registries=regs.hosts(), timeout=5, **kw)


# ------------------------------------------------------------------------------------------------ resolve


def test_open_registry_tag(registries: Registries) -> None:
    open_ = registries.open
    open_.push_image("team/web", "1.0", ["/docker-entrypoint.sh"], ["nginx", "-g", "daemon off;"])
    got = resolver(registries).resolve(ImageRequest(f"{open_.host}/team/web:1.0", "shop", (), "arm64"))
    assert got == ImageEntrypoint(("/docker-entrypoint.sh",), ("nginx", "-g", "daemon off;"))


def test_null_entrypoint_and_cmd_are_empty(registries: Registries) -> None:
    open_ = registries.open
    open_.push_image("team/nothing", "1", None, ["sh"])
    got = resolver(registries).resolve(ImageRequest(f"{open_.host}/team/nothing:1", "shop", (), "arm64"))
    assert got == ImageEntrypoint((), ("sh",))


def test_basic_auth_with_pull_secret(registries: Registries) -> None:
    locked = registries.basic
    locked.push_image("private/app", "v2", ["/app"], ["--serve"])
    secrets = Secrets({"shop": {"regcred": dockerconfig(locked.host, USER, PASSWORD)}})
    image = f"{locked.host}/private/app:v2"
    got = resolver(registries, secrets).resolve(ImageRequest(image, "shop", ("regcred",), "arm64"))
    assert got == ImageEntrypoint(("/app",), ("--serve",))
    # without the secret (other namespace, or not listed) the lookup fails with a reason
    for ns, names in (("other", ("regcred",)), ("shop", ())):
        with pytest.raises(Unresolvable) as err:
            resolver(registries, secrets).resolve(ImageRequest(image, ns, names, "arm64"))
        assert "pull secret" in str(err.value)
    wrong = Secrets({"shop": {"regcred": dockerconfig(locked.host, USER, "nope")}})
    with pytest.raises(Unresolvable) as err:
        resolver(registries, wrong).resolve(ImageRequest(image, "shop", ("regcred",), "arm64"))
    assert "401" in str(err.value)


def test_multi_arch_index_picks_the_domain_arch(registries: Registries) -> None:
    open_ = registries.open
    repo = "team/multi"
    digests = {arch: open_.push_image(repo, f"only-{arch}", [f"/bin/{arch}"], [], arch) for arch in ("arm64", "amd64")}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": {"os": "linux", "architecture": a}}
        for a, d in digests.items()]}
    # sizes are not checked by the registry for index entries; the content digests are
    open_.push_manifest(repo, "multi", index)
    res = resolver(registries)
    for arch in ("arm64", "amd64"):
        got = res.resolve(ImageRequest(f"{open_.host}/{repo}:multi", "shop", (), arch))
        assert got.entrypoint == (f"/bin/{arch}",)
    with pytest.raises(Unresolvable) as err:
        res.resolve(ImageRequest(f"{open_.host}/{repo}:multi", "shop", (), "s390x"))
    assert "linux/s390x" in str(err.value) and "linux/arm64" in str(err.value)


def test_missing_image_and_unreachable_registry_are_unresolvable(registries: Registries) -> None:
    open_ = registries.open
    with pytest.raises(Unresolvable) as err:
        resolver(registries).resolve(ImageRequest(f"{open_.host}/team/absent:1", "shop", (), "arm64"))
    assert "404" in str(err.value) and "team/absent" in str(err.value)
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(Unresolvable) as err:
        OciResolver(Secrets(), insecure_registries=[dead], timeout=2).resolve(
            ImageRequest(f"{dead}/x/y:1", "shop", (), "arm64"))
    assert "unreachable" in str(err.value)


def test_bearer_token_registry_anonymous_and_with_pull_secret(registries: Registries) -> None:
    reg = registries.bearer
    reg.push_image("public/tool", "1", ["/tool"], ["--help"])
    reg.push_image("private/app", "1", ["/app"], [])
    got = resolver(registries).resolve(ImageRequest(f"{reg.host}/public/tool:1", "shop", (), "arm64"))
    assert got == ImageEntrypoint(("/tool",), ("--help",))  # anonymous token, pull granted on public/*
    with pytest.raises(Unresolvable) as err:
        resolver(registries).resolve(ImageRequest(f"{reg.host}/private/app:1", "shop", (), "arm64"))
    assert "anonymously" in str(err.value) and "private/app" in str(err.value)
    secrets = Secrets({"shop": {"regcred": dockerconfig(reg.host, USER, PASSWORD)}})
    request = ImageRequest(f"{reg.host}/private/app:1", "shop", ("regcred",), "arm64")
    got = resolver(registries, secrets).resolve(request)
    assert got == ImageEntrypoint(("/app",), ())


# ------------------------------------------------------------------------------------------------ caching


def test_digest_pinned_refs_are_served_from_cache(registries: Registries) -> None:
    open_ = registries.open
    digest = open_.push_image("team/pinned", "1", ["/pinned"], [])
    results: list[str] = []
    res = resolver(registries, on_cache=results.append)
    request = ImageRequest(f"{open_.host}/team/pinned@{digest}", "shop", (), "arm64")
    first = res.resolve(request)
    open_.delete_manifest("team/pinned", digest)  # the registry forgets it
    assert res.resolve(request) == first == ImageEntrypoint(("/pinned",), ())
    assert results == ["miss", "hit"]


def test_tag_results_expire_after_the_ttl(registries: Registries) -> None:
    open_ = registries.open
    now = [0.0]
    results: list[str] = []
    res = resolver(registries, tag_ttl=60, clock=lambda: now[0], on_cache=results.append)
    request = ImageRequest(f"{open_.host}/team/moving:stable", "shop", (), "arm64")
    open_.push_image("team/moving", "stable", ["/v1"], [])
    assert res.resolve(request).entrypoint == ("/v1",)
    open_.push_image("team/moving", "stable", ["/v2"], [])
    now[0] = 59.0
    assert res.resolve(request).entrypoint == ("/v1",)  # within the TTL: cached
    now[0] = 61.0
    assert res.resolve(request).entrypoint == ("/v2",)  # re-pushed tag seen after the TTL
    assert results == ["miss", "hit", "miss"]


# ------------------------------------------------------------------------------------------------ webhook


def test_pod_without_command_is_wrapped_from_the_registry(registries: Registries) -> None:
    locked = registries.basic
    locked.push_image("private/api", "3", ["/api"], ["--port", "8080"])
    secrets = Secrets({"shop": {"regcred": dockerconfig(f"http://{locked.host}/v2/", USER, PASSWORD)}})
    domain = DomainView(name="d", arch="arm64", hwcap=(0xF, 0, 0, 0), mask_id="m", mask_canonical="arm64:x",
                        namespace_selector=LabelSelector.parse({}))
    pod = {"metadata": {"name": "api"},
           "spec": {"imagePullSecrets": [{"name": "regcred"}],
                    "containers": [{"name": "api", "image": f"{locked.host}/private/api:3"}]}}
    decision = mutate_pod(pod, namespace="shop", namespace_labels={}, domains=[domain],
                          config=MutationConfig(operator_namespace="op", init_image="op:1"),
                          resolver=resolver(registries, secrets))
    c = jsonpatch.apply_patch(pod, decision.patch)["spec"]["containers"][0]
    assert c["command"][-2:] == ["--", "/api"] and c["args"] == ["--port", "8080"]


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("image", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("index.docker.io/library/nginx", "docker.io", "library/nginx", "latest", None),
        ("ghcr.io/org/sub/img:v1", "ghcr.io", "org/sub/img", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("registry:5000/app:2", "registry:5000", "app", "2", None),
        ("quay.io/a/b@sha256:" + "a" * 64, "quay.io", "a/b", None, "sha256:" + "a" * 64),
        ("quay.io/a/b:1@sha256:" + "b" * 64, "quay.io", "a/b", "1", "sha256:" + "b" * 64),
    ],
)
def test_image_references_normalise_like_the_runtime(
    image: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image_ref(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize("image", ["", "has space", "Upper/Case", "a/b:", "repo@sha256", "a//b"])
def test_bad_references_name_the_image(image: str) -> None:
    with pytest.raises(Unresolvable) as err:
        parse_image_ref(image)
    assert repr(image) in str(err.value)


def test_credentials_match_like_the_kubelet() -> None:
    configs = [
        {"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}}},
        {"auths": {"*.corp.example": {"username": "corp", "password": "x"},
                   "other.example": {"username": "o", "password": "y"}}},
    ]
    assert [c.username for c in credentials_for("docker.io", configs)] == ["hub"]
    assert [c.username for c in credentials_for("reg.corp.example", configs)] == ["corp"]
    assert credentials_for("corp.example", configs) == []
    assert "pw" not in repr(credentials_for("docker.io", configs))
