"""Fixtures for the Helm chart tests; helm is the devcluster's pinned build (no second way to get it)."""

from __future__ import annotations

import pytest
from chartlib import Helm, Render, Rendered, render_with

from hwcap_dev.devcluster.assets import Binaries


@pytest.fixture(scope="session")
def helm_tool(devcluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm of the devcluster build."""
    return Helm(devcluster_binaries.helm, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def render(helm_tool: Helm) -> Render:
    """``render(values=None, api_versions=())`` -> the rendered objects (None documents dropped)."""

    def _render(values: dict[str, object] | None = None, *, api_versions: tuple[str, ...] = ()) -> Rendered:
        return render_with(helm_tool, values, api_versions=api_versions)

    return _render
