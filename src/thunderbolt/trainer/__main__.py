"""``python -m thunderbolt.trainer --config … --output …``: what torchrun launches."""

from __future__ import annotations

import sys

from thunderbolt.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
