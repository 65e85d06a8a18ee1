"""The nfd-worker work module: NFD's own replace block, with its in-repo api/nfd path pinned to the release."""

from __future__ import annotations

import pytest

from hwcap_dev.devcluster.build import BuildError
from hwcap_dev.devcluster.nfd_worker import work_go_mod

NFD_GO_MOD = """module sigs.k8s.io/node-feature-discovery

go 1.25.0

require (
\tk8s.io/api v0.34.1
\tsigs.k8s.io/node-feature-discovery/api/nfd v0.0.0-00010101000000-000000000000
)

replace (
\tk8s.io/api => k8s.io/api v0.34.1
\tsigs.k8s.io/node-feature-discovery/api/nfd => ./api/nfd
)
"""


def test_work_module_keeps_nfds_replaces_and_pins_its_api_module() -> None:
    text = work_go_mod(NFD_GO_MOD, "v0.18.2")
    assert "go 1.25.0" in text and "require sigs.k8s.io/node-feature-discovery v0.18.2" in text
    assert "\tk8s.io/api => k8s.io/api v0.34.1\n" in text
    api = "sigs.k8s.io/node-feature-discovery/api/nfd"
    assert f"\t{api} => {api} v0.18.2\n" in text
    assert "./api/nfd" not in text and text.rstrip().endswith(")")


def test_a_release_without_the_local_api_replace_is_refused_not_guessed() -> None:
    with pytest.raises(BuildError, match="no longer replaces"):
        work_go_mod(NFD_GO_MOD.replace("\tsigs.k8s.io/node-feature-discovery/api/nfd => ./api/nfd\n", ""))
    with pytest.raises(BuildError, match="no replace block"):
        work_go_mod("module x\n\ngo 1.25.0\n")
