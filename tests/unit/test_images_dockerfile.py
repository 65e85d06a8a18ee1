"""The Dockerfile's init and sbom targets agree with what the engine-free build and the operator assume.

No engine runs here, so this reads the Dockerfile (hadolint runs in tests/chart/test_dockerfile.py): the
init image holds the shim where the operator's install command runs it, as the engine-free init image does;
the SBOM target exports what its builder stage writes, with a pinned generator.
"""

from __future__ import annotations

import shlex

from dockerfile_parse import DockerfileParser

from hwcap_dev.images.recipes import INIT_SHIM_PATH
from hwcap_dev.paths import REPO_ROOT
from hwcap_operator.admission.model import MutationConfig


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for item in DockerfileParser(path=str(REPO_ROOT / "Dockerfile")).structure:
        if item["instruction"] == "FROM":
            words = item["value"].split()
            current = [("FROM", words[0])]
            stages[words[-1] if len(words) == 3 else words[0]] = current
        elif item["instruction"] != "COMMENT":
            current.append((item["instruction"], item["value"]))
    return stages


def test_init_target_is_scratch_plus_the_shim_where_the_install_command_runs_it() -> None:
    init = _stages()["init"]
    assert init[0] == ("FROM", "scratch")
    copies = [shlex.split(value) for name, value in init if name == "COPY"]
    assert copies == [["--from=builder", "--chmod=0755", "/out/hwcap-exec", f"/{INIT_SHIM_PATH}"]]
    install = MutationConfig(init_image="x", operator_namespace="hwcap-system").install_command
    assert install[0] == f"/{INIT_SHIM_PATH}" and install[1] == "--install"
    assert dict(init).get("USER", "").split(":")[0].isdigit()  # numeric: scratch has no /etc/passwd
    assert shlex.split(dict(init)["ENTRYPOINT"].strip("[]").replace(",", " ")) == [f"/{INIT_SHIM_PATH}"]


def test_sbom_target_exports_a_cyclonedx_file_from_a_pinned_generator() -> None:
    stages = _stages()
    assert stages["sbom"] == [("FROM", "scratch"), ("COPY", "--from=sbom-builder /sbom/ /")]
    (run,) = [value for name, value in stages["sbom-builder"] if name == "RUN"]
    assert "cyclonedx-bom==" in run and "--of JSON" in run and "-o /sbom/hwcap-operator.cdx.json" in run
    assert "--no-index --find-links /wheels" in run  # the same wheels the runtime stage installs


def test_the_operator_image_stays_the_default_target() -> None:
    assert list(_stages())[-1] == "runtime"
