"""`python -m celeris_operator`: run the operator (kopf) for every namespace."""

import sys

import kopf

from celeris_operator import handlers  # noqa: F401 - importing registers the handlers


def main() -> int:
    return kopf.cli.main(["run", "--all-namespaces", "--standalone", "-m", "celeris_operator.handlers",
                          *sys.argv[1:]])  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
