#!/usr/bin/env python3
"""A training script that knows nothing of Thunderbolt: it takes flags and prints
`name=value` lines, as countless scripts do. The StdOut collector turns those lines into
the Trial's reports; nothing here imports, reads or sends anything Thunderbolt-specific.

The "model" is a stand-in curve so the example runs in seconds on any CPU: accuracy
rises with the epochs and is best for a learning rate near 0.05 with some momentum.
"""

import argparse
import math
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--sleep", type=float, default=0.5, help="seconds per epoch")
    ap.add_argument("--silent", action="store_true", help="print no metrics (a broken run)")
    ap.add_argument("--bad-lines", type=int, default=0, help="also print N malformed lines")
    args = ap.parse_args()

    print(f"training with lr={args.lr} momentum={args.momentum}", flush=True)
    # distance from the best learning rate, in decades
    miss = abs(math.log10(args.lr) - math.log10(0.05))
    ceiling = max(0.05, 0.95 - 0.25 * miss + 0.04 * args.momentum)
    for bad in range(args.bad_lines):
        print(f"val_accuracy=nan loss=oops{bad}", flush=True)
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.sleep)
        accuracy = ceiling * (1 - math.exp(-epoch / 2.5))
        loss = 1.0 - accuracy
        if args.silent:
            print(f"finished epoch {epoch}", flush=True)
        else:
            print(f"epoch={epoch} val_accuracy={accuracy:.5f} loss={loss:.5f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
