"""Run convtool as ``python -m convtool``."""

from convtool.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
