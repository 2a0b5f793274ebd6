"""`python -m celeris.execution` = `celeris execution run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["execution", "run", *sys.argv[1:]]))
