"""`python -m celeris.dashboard` = `celeris dashboard run`."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main(["dashboard", "run", *sys.argv[1:]]))
