"""Where the lab's inputs (in the repo) and outputs (in the user's cache) live."""

from __future__ import annotations

import os
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent  # tests/kernel
REPO_ROOT = LAB_DIR.parent.parent
PATCH_DIR = LAB_DIR / "patches"
CONFIG_DIR = LAB_DIR / "configs"
GUEST_DIR = LAB_DIR / "guest"
CACHE_ROOT = Path(os.environ.get("HWCAP_CACHE", Path.home() / ".cache" / "hwcap-operator")) / "kernel"
