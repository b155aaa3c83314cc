import sys

from secc.contract import main

sys.exit(main())
