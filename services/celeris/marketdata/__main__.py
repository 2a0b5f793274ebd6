"""`python -m celeris.marketdata` = `celeris marketdata run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["marketdata", "run", *sys.argv[1:]]))
