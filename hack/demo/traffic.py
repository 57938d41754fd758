"""Steady, bounded V2 inference traffic for the demo, so a canary has requests to judge.

Usage: traffic.py BASE_URL MODEL [--rate 5] [--seconds 1500] [--max-requests 6000].
Stops at the first of: the time limit, the request limit, SIGTERM. Failed requests (no
ready pod yet, a rollout in progress) are counted and retried at the same pace.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import urllib.error
import urllib.request

ROW = [5.9, 3.0, 5.1, 1.8]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("model")
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=1500.0)
    parser.add_argument("--max-requests", type=int, default=6000)
    args = parser.parse_args()
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    url = f"{args.base.rstrip('/')}/v2/models/{args.model}"
    body: bytes | None = None
    ok = failed = 0
    deadline = time.monotonic() + args.seconds
    while not stop and time.monotonic() < deadline and ok + failed < args.max_requests:
        started = time.monotonic()
        try:
            if body is None:  # the input's name and width come from the model's metadata
                with urllib.request.urlopen(url, timeout=5) as response:
                    tensor = json.loads(response.read())["inputs"][0]
                width = tensor["shape"][-1] if tensor["shape"][-1] > 0 else len(ROW)
                row = (ROW + [0.0] * width)[:width]
                request = {"inputs": [{"name": tensor["name"], "datatype": tensor.get("datatype", "FP32"),
                                       "shape": [1, width], "data": row}]}  # fmt: skip
                body = json.dumps(request).encode()
            post = urllib.request.Request(
                f"{url}/infer", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(post, timeout=5) as response:
                response.read()
            ok += 1
        except (OSError, urllib.error.HTTPError, KeyError, ValueError):
            failed += 1
        time.sleep(max(0.0, 1.0 / args.rate - (time.monotonic() - started)))
    print(f"traffic: {ok} requests answered, {failed} failed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
