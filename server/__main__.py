"""`python -m server` behaves exactly like the `assistd` console script."""

from server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
