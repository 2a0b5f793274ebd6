"""`python -m celeris.risk` = `celeris risk run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["risk", "run", *sys.argv[1:]]))
