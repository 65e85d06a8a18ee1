"""The build recipe: replace block generated from a release's go.mod, pins → cache key, version stamps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hwcap_dev.devcluster import build

GO_MOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/apiserver v0.0.0
\tgithub.com/spf13/cobra v1.10.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiserver => ./staging/src/k8s.io/apiserver
\tk8s.io/streaming => ./staging/src/k8s.io/streaming
)
"""


def test_staging_modules_are_read_from_the_replace_block() -> None:
    assert build.staging_modules(GO_MOD) == ["k8s.io/api", "k8s.io/apiserver", "k8s.io/streaming"]


def test_staging_modules_refuses_a_go_mod_without_staging() -> None:
    with pytest.raises(build.BuildError, match="staging"):
        build.staging_modules("module x\n\ngo 1.22\n")


def test_module_text_replaces_every_staging_module_with_its_tag() -> None:
    pins = build.Pins(kubernetes="v1.37.2")
    text = build.kubernetes_module_text(pins, GO_MOD)
    assert "require k8s.io/kubernetes v1.37.2" in text
    assert "go 1.26.0" in text
    for mod in ("k8s.io/api", "k8s.io/apiserver", "k8s.io/streaming"):
        assert f"\t{mod} => {mod} v0.37.2\n" in text
    assert "cobra" not in text


def test_staging_version_follows_the_release() -> None:
    assert build.Pins(kubernetes="v1.36.5").staging_version() == "v0.36.5"
    assert build.Pins(kubernetes="v1.37.0-rc.1").staging_version() == "v0.37.0-rc.1"
    with pytest.raises(ValueError, match=r"v2\.0\.0"):
        build.Pins(kubernetes="v2.0.0").staging_version()


def test_every_pin_changes_the_cache_key() -> None:
    base = build.Pins()
    keys = {base.key()}
    for f in dataclasses.fields(build.Pins):
        value = getattr(base, f.name)
        changed = dataclasses.replace(base, **{f.name: value + 1 if isinstance(value, int) else value + "x"})
        keys.add(changed.key())
    assert len(keys) == 1 + len(dataclasses.fields(build.Pins))
    assert base.key() == build.Pins().key()


def test_cache_dir_honours_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HWCAP_OPERATOR_CACHE", str(tmp_path))
    pins = build.Pins()
    assert str(build.bin_dir(pins)) == f"{tmp_path}/k8s-{pins.kubernetes}-{pins.key()}/bin"
    assert not build.is_built(pins)
