import sys

from secc.bus.contract import main

sys.exit(main())
