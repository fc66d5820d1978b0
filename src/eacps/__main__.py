import sys

from eacps.commands.cli import main

sys.exit(main())
