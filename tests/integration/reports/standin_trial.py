"""A stand-in trainer for the base image (python3, standard library only).

Reads the TrainerConfig the operator mounts, reports start / one value per epoch / stop
to the report endpoint with the mounted per-Trial token, stops when the reply says
``prune``, and writes its TrainResult to the termination message like the real trainer.
Trials 0 and 1 and every even-numbered Trial learn well; odd ones from 3 on are clearly
worse, so a median pruner has something to prune.
"""

import json
import os
import time
import urllib.error
import urllib.request

cfg = json.load(open(os.environ["THUNDERBOLT_CONFIG"]))
ident, metric, epochs = cfg["identity"], cfg["objective"]["metric"], cfg["epochs"]
number = ident["number"]
good = number < 2 or number % 2 == 0
peak = 0.9 + 0.01 * number if good else 0.2
pause = float(os.environ.get("STANDIN_EPOCH_SECONDS", "1.0"))
report = cfg.get("report") or {}
url = token = None
if report:
    base = report["url"].rstrip("/")
    url = f"{base}/v1/namespaces/{ident['namespace']}/trials/{ident['trial']}/reports"
    token = open(report["tokenFile"]).read().strip()


def send(body):
    if not url:
        return {}
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    # Patient like the real reporter: a loaded CI machine can stall the endpoint for
    # seconds, and a report given up on would be a hole in the Trial's history.
    for _ in range(10):
        try:
            req = urllib.request.Request(url, data=data, method="POST", headers=headers)
            with urllib.request.urlopen(req, timeout=10) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 503):
                print("report rejected", exc.code, exc.read()[:300], flush=True)
                return {}
        except OSError as exc:
            print("report failed:", exc, flush=True)
        time.sleep(0.5)
    print("report given up:", body, flush=True)
    return {}


send({"kind": "start"})
status, value, last = "Succeeded", 0.0, 0
for epoch in range(1, epochs + 1):
    time.sleep(pause)
    value, last = peak * (1 - 0.5**epoch), epoch
    reply = send({"kind": "epoch", "step": epoch, "metrics": {metric: value}})
    print(f"epoch {epoch}: {metric}={value:.4f} reply={reply}", flush=True)
    if reply.get("prune") is True:
        status = "Pruned"
        break
result = {
    "status": status,
    "objective": value,
    "metric": metric,
    "metrics": {metric: value},
    "epochs": last,
}
stop = {"kind": "stop", "step": last, "status": status, "objective": value}
if status == "Pruned":
    result["reason"] = stop["reason"] = "Pruned"
send(stop)
with open("/dev/termination-log", "w") as fh:
    fh.write(json.dumps(result))
print(json.dumps(result), flush=True)
