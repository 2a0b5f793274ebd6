"""`python -m celeris ...` = `celeris ...` (how `celeris up` starts its component processes and a pod
starts its component: `python -m celeris execution run`)."""

import sys

from celeris.cli import main

if __name__ == "__main__":
    sys.exit(main())
