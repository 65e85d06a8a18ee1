"""``python -m hwcap_operator.devcluster``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
