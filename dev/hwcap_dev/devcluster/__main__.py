"""``python -m hwcap_dev.devcluster``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
