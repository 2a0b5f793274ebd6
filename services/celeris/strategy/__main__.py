"""`python -m celeris.strategy` = `celeris strategy run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["strategy", "run", *sys.argv[1:]]))
