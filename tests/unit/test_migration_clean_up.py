"""``migrate``'s clean-up against a real registry (docker-registry on loopback) and real files: the checkpoint
image's tag and the archive are removed, and what cannot be removed is named, never raised."""

from __future__ import annotations

from pathlib import Path

import requests
from tests.support.registry import run_registry

from hwcap_operator.domain.migration import MigrationRequest
from hwcap_operator.kube.migrate import KubeMigrationSteps

REQUEST = MigrationRequest("shop", "cart-0", ("app",), "node-a", "node-b")


def _archive(tmp_path: Path) -> Path:
    archive = tmp_path / "checkpoint-cart-0_shop-app.tar"
    archive.write_bytes(b"not really a CRIU archive, only bytes to push" * 100)
    return archive


def _manifest_status(host: str, reference: str) -> int:
    repository, _, tag = reference.removeprefix(f"{host}/").rpartition(":")
    answer = requests.head(f"http://{host}/v2/{repository}/manifests/{tag}", timeout=10,
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    return answer.status_code


def _steps(host: str) -> KubeMigrationSteps:
    return KubeMigrationSteps(None, host, insecure_registry=True)  # type: ignore[arg-type]  # no cluster call here


def test_the_archive_and_the_image_tag_are_removed(tmp_path: Path) -> None:
    with run_registry(tmp_path / "registry", "none") as registry:
        archive = _archive(tmp_path)
        steps = _steps(registry.host)
        image = steps.build_image(REQUEST, "app", str(archive))
        assert _manifest_status(registry.host, image) == 200
        left = steps.clean_up(REQUEST, {"app": str(archive)}, {"app": image})
        assert left == []
        assert not archive.exists() and _manifest_status(registry.host, image) == 404
        assert steps.clean_up(REQUEST, {"app": str(archive)}, {"app": image}) == []  # already gone: nothing left


def test_a_registry_that_refuses_deletes_is_named_and_the_archive_still_goes(tmp_path: Path) -> None:
    with run_registry(tmp_path / "registry", "none", deletes=False) as registry:
        archive = _archive(tmp_path)
        steps = _steps(registry.host)
        image = steps.build_image(REQUEST, "app", str(archive))
        left = steps.clean_up(REQUEST, {"app": str(archive)}, {"app": image})
        assert len(left) == 1 and left[0].startswith(f"image {image}: ") and "UNSUPPORTED" in left[0], left
        assert not archive.exists() and _manifest_status(registry.host, image) == 200


def test_an_archive_that_cannot_be_removed_is_named(tmp_path: Path) -> None:
    with run_registry(tmp_path / "registry", "none") as registry:
        archive = _archive(tmp_path)
        steps = _steps(registry.host)
        image = steps.build_image(REQUEST, "app", str(archive))
        not_a_file = tmp_path / "a-directory.tar"
        not_a_file.mkdir()
        left = steps.clean_up(REQUEST, {"app": str(not_a_file)}, {"app": image})
        assert left == [f"archive {not_a_file} on node node-a: Is a directory"]
