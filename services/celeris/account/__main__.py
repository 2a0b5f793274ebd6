"""`python -m celeris.account` = `celeris account run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["account", "run", *sys.argv[1:]]))
