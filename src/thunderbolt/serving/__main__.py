"""``python -m thunderbolt.serving``: the same as ``thunderbolt serve``, without the other
subcommands' imports, for the smallest possible serving image."""

from __future__ import annotations

import argparse
import sys

from thunderbolt.cli import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thunderbolt.serving")
    serve.register(parser.add_subparsers(dest="command", required=True))
    return int(serve.run(parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])))


if __name__ == "__main__":
    sys.exit(main())
