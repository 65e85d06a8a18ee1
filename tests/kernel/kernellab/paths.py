"""Where the lab's inputs (in the repo) and outputs (in the user's cache) live."""

from __future__ import annotations

from pathlib import Path

from hwcap_dev.devcluster.build import cache_root

LAB_DIR = Path(__file__).resolve().parent.parent  # tests/kernel
REPO_ROOT = LAB_DIR.parent.parent
PATCH_DIR = LAB_DIR / "patches"
CONFIG_DIR = LAB_DIR / "configs"
GUEST_DIR = LAB_DIR / "guest"
#: One cache root for the whole project ($HWCAP_OPERATOR_CACHE, $XDG_CACHE_HOME/hwcap-operator, ~/.cache/...).
CACHE_ROOT = cache_root() / "kernel"
