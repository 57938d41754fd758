"""Send one V2 (Open Inference Protocol) request to the demo's ModelDeployment and print it.

Usage: infer.py BASE_URL MODEL. The input tensor's name, datatype and width come from the
model's own metadata (GET /v2/models/MODEL), so this works for any tabular model.
"""

from __future__ import annotations

import json
import sys
import urllib.request

# Three iris flowers (sepal length/width, petal length/width in cm): setosa, versicolor, virginica.
IRIS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.9, 3.1, 5.4, 2.1]]
SPECIES = ["setosa", "versicolor", "virginica"]


def call(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main(base: str, model: str) -> int:
    meta = call(f"{base}/v2/models/{model}")
    tensor = meta["inputs"][0]
    width = (
        tensor["shape"][-1]
        if isinstance(tensor["shape"][-1], int) and tensor["shape"][-1] > 0
        else 4
    )
    rows = [row[:width] + [0.0] * (width - len(row)) for row in IRIS]
    request = {
        "inputs": [
            {
                "name": tensor["name"],
                "datatype": tensor.get("datatype", "FP32"),
                "shape": [len(rows), width],
                "data": [v for row in rows for v in row],
            }
        ]
    }
    print(f"POST {base}/v2/models/{model}/infer")
    print(json.dumps(request))
    result = call(f"{base}/v2/models/{model}/infer", request)
    print(json.dumps(result, indent=2))
    output = result["outputs"][0]
    if len(output["shape"]) == 2 and output["shape"][1] == len(SPECIES):
        k = output["shape"][1]
        scores = [output["data"][i * k : (i + 1) * k] for i in range(output["shape"][0])]
        predicted = [SPECIES[max(range(k), key=row.__getitem__)] for row in scores]
        print(f"predicted: {', '.join(predicted)} (expected: {', '.join(SPECIES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/"), sys.argv[2]))
