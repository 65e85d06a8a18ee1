"""Where a source checkout keeps what the development tools read (profiles, examples, the chart, the shim source).

The tools run from a checkout only (they are not in the product's wheel), so the repository root is found
relative to this file rather than guessed from the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The repository root: ``dev/hwcap_dev/paths.py`` → three levels up.
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PROFILES_DIR: Final = REPO_ROOT / "tests" / "data" / "profiles"
EXAMPLES_DIR: Final = REPO_ROOT / "examples"
CHART_DIR: Final = REPO_ROOT / "charts" / "hwcap-operator"
SHIM_SOURCE_DIR: Final = REPO_ROOT / "src" / "shim"
