import sys

from hwcap_dev.demo.cli import main

sys.exit(main())
