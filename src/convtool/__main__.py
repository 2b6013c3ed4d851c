"""Run convtool as ``python -m convtool``."""

from convtool.cli import entry

if __name__ == "__main__":
    entry()
