import sys

from eacps.cli import main

sys.exit(main())
