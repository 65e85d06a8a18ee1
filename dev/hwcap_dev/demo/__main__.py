import sys

from hwcap_dev.demo.story import main

sys.exit(main())
