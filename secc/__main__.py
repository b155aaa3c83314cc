import sys

from secc.cli import main

sys.exit(main())
