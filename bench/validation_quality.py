"""How well the validation layer finds what is wrong, and what it costs.

1. Detection: every case kind of ``thunderbolt.validation.synthetic`` (label noise
   5/10/20%, conflicting duplicates, split leakage, a constant feature, a shifted
   feature, class imbalance, a diverging learning rate, dead-ReLU initialization, a
   collapsed model, healthy controls) on six base datasets (iris, wine, breast_cancer,
   digits, synthetic blobs, synthetic sequences) and several seeds. Data cases run the
   dataset checks; model cases (and healthy controls) train a small network in a plain
   PyTorch loop instrumented by ``TrainingProbe`` and run both (healthy controls get
   more seeds than the other kinds, so the false-positive rate rests on more than a
   dozen runs). The regression cases (``synthetic.regression_cases``: flat
   predictions, target noise, target leakage, a shifted feature, an exploding SGD run,
   healthy controls, on diabetes and Friedman #1) run the same way. A case is detected
   when the report's primary finding (causes before symptoms) is the injected kind; a
   healthy control is a false positive when the verdict is not pass; a problem case is a
   false negative when the verdict is pass. Prints the confusion matrix.
2. Localization: precision among the top-k flagged rows (k = injected noisy rows) at
   10% label noise.
3. Calibration: each model dimension's scores on healthy controls and on the faulty
   cases, per task (classification, regression), beside its thresholds (how the thresholds were chosen: between the two).
4. Cost: dataset checks on 1M rows x 20 columns, streamed (in-process chunks, and the
   CLI over a Parquet file), rows/s and peak RSS, each in a fresh process.
5. Overhead: the built-in trainer with checks=cheap vs checks=off on the built-in
   datasets, interleaved: in-process ``train()`` in CPU seconds (robust to a shared
   machine; the strict figure, without imports), and the whole trainer process as a
   Trial's pod runs it, in wall seconds.

Targets: accuracy >= 90%, FPR <= 5%, FNR <= 5%, precision@k >= 0.8, 1M rows < 120 s and
< 1 GB, overhead <= 10%.

    .venv/bin/python bench/validation_quality.py [--seeds 2] [--repeats 3] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from thunderbolt.validation import check_dataset, synthetic

HEALTHY = "healthy"


def run_cases(seeds: int, healthy_seeds: int) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    out = []
    extra = synthetic.cases(kinds=("healthy",), seeds=tuple(range(seeds, healthy_seeds)))
    regression = synthetic.regression_cases(seeds=tuple(range(seeds)))
    regression += synthetic.regression_cases(kinds=("reg_healthy",),
                                             seeds=tuple(range(seeds, healthy_seeds)))  # fmt: skip
    for case in synthetic.cases(seeds=tuple(range(seeds))) + extra + regression:
        began = time.perf_counter()
        if case.needs_training:
            report, _times = synthetic.train_case(case)
        else:
            report = check_dataset(case.x_train, case.y_train, case.x_val, case.y_val,
                                   feature_names=case.feature_names, task=case.task)  # fmt: skip
        row: dict[str, Any] = {
            "case": case.name,
            "kind": case.kind,
            "task": case.task,
            "expected": case.expected or HEALTHY,
            "primary": report.primary or HEALTHY,
            "verdict": report.verdict,
            "dims": {d.name: d.score for d in report.dimensions},
            "seconds": time.perf_counter() - began,
        }
        classes = report.profiler is not None and case.task == "classification"
        votes = report.profiler.label_votes() if classes else None
        if votes is not None:  # the estimated noise rate, also below the warn threshold
            v = votes[0]
            row["noise_rate"] = float((v.judged & (v.disagreement >= 0.8)).mean())
        if case.kind.startswith("label_noise") or case.kind == "reg_target_noise":
            finding = report.finding("label_noise")
            k = len(case.noisy_rows)
            top = finding.row_indices[:k] if finding else []
            row["precision_at_k"] = len(set(top) & set(case.noisy_rows.tolist())) / k
        if case.kind in ("shifted_feature", "reg_shifted_feature"):
            finding = report.finding("feature_shift")
            row["column_right"] = bool(finding and finding.columns[0] == case.shifted)
        out.append(row)
    return out


def confusion(rows: list[dict[str, Any]]) -> str:
    truths = sorted({r["expected"] for r in rows}, key=lambda k: (k != HEALTHY, k))
    predicted = sorted({r["primary"] for r in rows} | set(truths), key=lambda k: (k != HEALTHY, k))
    counts = collections.Counter((r["expected"], r["primary"]) for r in rows)
    short = {k: k[:8] for k in predicted}
    lines = ["true \\ predicted".ljust(24) + " ".join(short[p].rjust(8) for p in predicted)]
    for t in truths:
        cells = " ".join(str(counts.get((t, p), 0) or ".").rjust(8) for p in predicted)
        lines.append(t.ljust(24) + cells)
    lines.append("columns: " + ", ".join(f"{short[p]}={p}" for p in predicted if short[p] != p))
    return "\n".join(lines)


def detection_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    healthy = [r for r in rows if r["expected"] == HEALTHY]  # both tasks' controls
    faulty = [r for r in rows if r["expected"] != HEALTHY]
    noise10 = [r["precision_at_k"] for r in rows if r["kind"] == "label_noise_10"]
    return {
        "cases": len(rows),
        "accuracy": sum(r["primary"] == r["expected"] for r in rows) / len(rows),
        "fpr": sum(r["verdict"] != "pass" for r in healthy) / max(len(healthy), 1),
        "fnr": sum(r["verdict"] == "pass" for r in faulty) / max(len(faulty), 1),
        "healthy": len(healthy),
        "faulty": len(faulty),
        "precision_at_k_10pct_mean": statistics.fmean(noise10) if noise10 else math.nan,
        "precision_at_k_10pct_min": min(noise10) if noise10 else math.nan,
        "shift_column_right": sum(
            r.get("column_right", False) for r in rows if "shifted_feature" in r["kind"]
        ),  # fmt: skip
        "regression_noise_precision_min": min(
            (r["precision_at_k"] for r in rows if r["kind"] == "reg_target_noise"),
            default=math.nan,
        ),
        "mistakes": [f"{r['case']}: {r['primary']}" for r in rows if r["primary"] != r["expected"]],
    }


FAULTY_MODEL_KINDS = {
    "classification": ("diverging_lr", "dead_relu", "collapsed_model"),
    "regression": ("reg_collapsed", "reg_target_noise", "reg_exploding"),
}


def calibration(rows: list[dict[str, Any]]) -> str:
    from thunderbolt.validation.model import ModelThresholds

    t = ModelThresholds()
    regression_field = {"output_variance": "regression_output_variance",
                        "mutual_information": "regression_mutual_information",
                        "baseline_agreement": "regression_mse_ratio",
                        "prediction_ks": "regression_prediction_ks"}  # fmt: skip
    lines = []
    for task, faulty in FAULTY_MODEL_KINDS.items():
        of_task = [r for r in rows if r.get("task", "classification") == task]
        names = sorted({n for r in of_task for n in r["dims"]})
        lines.append(f"-- {task}")
        lines.append(
            f"{'dimension':<20} {'healthy min..max':>22}  {'faulty cases (kind: min..max)'}"
        )
        for name in names:
            h = [r["dims"][name] for r in of_task if r["expected"] == HEALTHY and name in r["dims"]]
            hf = [v for v in h if math.isfinite(v)]
            parts = []
            for kind in faulty:
                v = [r["dims"][name] for r in of_task if r["kind"] == kind and name in r["dims"]]
                if v:
                    parts.append(f"{kind}: {_fmt(min(v))}..{_fmt(max(v))}")
            field = regression_field.get(name, name) if task == "regression" else name
            warn, fail = getattr(t, field, (None, None))
            healthy = f"{_fmt(min(hf))}..{_fmt(max(hf))}" if hf else "-"
            lines.append(
                f"{name:<20} {healthy:>22}  {'; '.join(parts)}  [warn {warn}, fail {fail}]"
            )
    parts = []
    for kind in (HEALTHY, "label_noise_5", "label_noise_10", "label_noise_20"):
        v = [r["noise_rate"] for r in rows if r["kind"] == kind and "noise_rate" in r]
        if v:
            parts.append(f"{kind}: {_fmt(min(v))}..{_fmt(max(v))}")
    lines.append(f"{'label-noise rate':<20} {'(dataset check)':>22}  {'; '.join(parts)}  "
                 "[warn 0.025, fail 0.35]")  # fmt: skip
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)


# --- cost on a large table ------------------------------------------------------------------
def _child_stream(rows: int, cols: int) -> None:
    """In a fresh process: feed generated chunks to the profiler, report timing and RSS."""
    from thunderbolt.validation import DatasetOptions, DatasetProfiler, dataset_report

    rng = np.random.default_rng(0)
    w = rng.normal(size=cols)
    profiler = DatasetProfiler([f"f{j}" for j in range(cols)], "classification", DatasetOptions())
    chunk = 100_000
    began = time.perf_counter()
    generate = 0.0
    for start in range(0, rows, chunk):
        g0 = time.perf_counter()
        size = min(chunk, rows - start)
        x = rng.normal(size=(size, cols))
        y = (x @ w > 0).astype(np.int64) + (x[:, 0] > 1.0)
        val = rng.random(size) < 0.2
        ids = np.arange(start, start + size)
        generate += time.perf_counter() - g0
        profiler.add(x[~val], y[~val], "train", ids[~val])
        profiler.add(x[val], y[val], "val", ids[val])
    report = dataset_report(profiler)
    seconds = time.perf_counter() - began - generate
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss, "verdict": report.verdict}))


def _child_write(path: str, rows: int, cols: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    w = rng.normal(size=cols)
    writer = None
    for start in range(0, rows, 100_000):
        size = min(100_000, rows - start)
        x = rng.normal(size=(size, cols))
        table = pa.table({**{f"f{j}": x[:, j] for j in range(cols)},
                          "target": (x @ w > 0).astype(np.int64)})  # fmt: skip
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer:
        writer.close()


def _child_cli(path: str) -> None:
    from thunderbolt.cli import main

    began = time.perf_counter()
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            code = main(["validate", "--dataset", path, "-o", "json"])
        finally:
            sys.stdout = stdout
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - began, "rss_mb": rss, "exit": code}))


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, check=True, env=env)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def cost(rows: int, cols: int) -> dict[str, Any]:
    stream = _child("stream", str(rows), str(cols))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "big.parquet")
        _child("write", path, str(rows), str(cols))
        cli = _child("cli", path)
    return {"rows": rows, "cols": cols, "stream": stream, "cli": cli}


# --- overhead on the built-in trainer --------------------------------------------------------
OVERHEAD_SETS = [
    ("iris", "mlp", 20),
    ("wine", "mlp", 20),
    ("breast_cancer", "mlp", 20),
    ("digits", "mlp", 20),
    ("digits", "cnn", 10),
    ("trajectories", "sequence", 10),
]


def _train_config(name: str, family: str, epochs: int, checks: str) -> dict[str, Any]:
    return {
        "dataset": {"uri": f"builtin://{name}"}, "model": family, "epochs": epochs,
        "checks": checks, "objective": {"metric": "val_accuracy", "direction": "maximize"},
    }  # fmt: skip


def overhead(repeats: int) -> list[dict[str, Any]]:
    """In-process ``train()`` (data, training, checks, export), CPU seconds, after one
    warm-up run of each setting (imports and first-call costs are not the checks')."""
    os.environ["THUNDERBOLT_CPU_THREADS"] = "1"
    import torch

    from thunderbolt.api.trainer_config import TrainerConfig
    from thunderbolt.trainer.run import train

    torch.set_num_threads(1)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for checks in ("off", "cheap"):  # warm-up
            train(TrainerConfig.model_validate(_train_config("iris", "mlp", 2, checks)),
                  f"{tmp}/warm-{checks}", emit=lambda _m: None)  # fmt: skip
        for name, family, epochs in OVERHEAD_SETS:
            times: dict[str, list[float]] = {"off": [], "cheap": []}
            for rep in range(repeats):
                for checks in ("off", "cheap") if rep % 2 == 0 else ("cheap", "off"):
                    config = TrainerConfig.model_validate(
                        _train_config(name, family, epochs, checks)
                    )
                    began = time.process_time()
                    result, code = train(config, f"{tmp}/{name}-{family}-{checks}-{rep}",
                                         emit=lambda _m: None)  # fmt: skip
                    assert code == 0, result
                    times[checks].append(time.process_time() - began)
            off, cheap = statistics.median(times["off"]), statistics.median(times["cheap"])
            out.append({"dataset": name, "model": family, "epochs": epochs,
                        "off_s": off, "cheap_s": cheap, "overhead": cheap / off - 1.0})  # fmt: skip
    return out


def process_overhead(repeats: int) -> list[dict[str, Any]]:
    """The whole ``python -m thunderbolt.trainer`` process, as a Trial's pod runs it
    (imports, data, training, checks, export), wall seconds."""
    out = []
    env = {**os.environ, "THUNDERBOLT_CPU_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, family, epochs in OVERHEAD_SETS:
            times: dict[str, list[float]] = {"off": [], "cheap": []}
            for rep in range(repeats):
                for checks in ("off", "cheap") if rep % 2 == 0 else ("cheap", "off"):
                    path = Path(tmp) / f"{name}-{family}-{checks}-{rep}.json"
                    path.write_text(json.dumps(_train_config(name, family, epochs, checks)))
                    began = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "thunderbolt.trainer", "--config",
                                    str(path), "--output", str(path.with_suffix(""))],
                                   check=True, capture_output=True, env=env)  # fmt: skip
                    times[checks].append(time.perf_counter() - began)
            off, cheap = statistics.median(times["off"]), statistics.median(times["cheap"])
            out.append({"dataset": name, "model": family, "epochs": epochs,
                        "off_s": off, "cheap_s": cheap, "overhead": cheap / off - 1.0})  # fmt: skip
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--seeds", type=int, default=2, help="seeds per kind and base (2: 144 cases)"
    )
    parser.add_argument("--healthy-seeds", type=int, default=5,
                        help="seeds for the healthy controls (5: 30 controls)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="overhead runs per setting")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["detect", "cost", "overhead", "process"]
    )
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "stream":
            _child_stream(int(rest[0]), int(rest[1]))
        elif kind == "write":
            _child_write(rest[0], int(rest[1]), int(rest[2]))
        else:
            _child_cli(rest[0])
        return 0
    figures: dict[str, Any] = {"machine": machine()}
    print(f"machine: {figures['machine']}", flush=True)
    ok = True
    if "detect" not in args.skip:
        began = time.perf_counter()
        rows = run_cases(args.seeds, max(args.seeds, args.healthy_seeds))
        d = detection_figures(rows)
        figures["detection"] = d
        print(f"\n== detection over {d['cases']} cases ({d['healthy']} healthy controls, "
              f"{d['faulty']} with a problem; {time.perf_counter() - began:.0f}s)")  # fmt: skip
        print(confusion(rows))
        print(f"accuracy {d['accuracy']:.1%} (target >= 90%)  FPR {d['fpr']:.1%} (<= 5%)  "
              f"FNR {d['fnr']:.1%} (<= 5%)")  # fmt: skip
        print(f"label-noise precision@k at 10% noise: mean {d['precision_at_k_10pct_mean']:.2f}, "
              f"min {d['precision_at_k_10pct_min']:.2f} (target >= 0.8)")  # fmt: skip
        print(f"shifted feature named first: {d['shift_column_right']} of "
              f"{sum('shifted_feature' in r['kind'] for r in rows)}")  # fmt: skip
        print(f"regression target-noise precision@k at 10% noise: min "
              f"{d['regression_noise_precision_min']:.2f}")  # fmt: skip
        if d["mistakes"]:
            print("misses: " + "; ".join(d["mistakes"]))
        print("\n== calibration: model dimensions on healthy vs faulty cases")
        print(calibration(rows))
        ok &= d["accuracy"] >= 0.9 and d["fpr"] <= 0.05 and d["fnr"] <= 0.05
        ok &= d["precision_at_k_10pct_mean"] >= 0.8
    if "cost" not in args.skip:
        c = cost(args.rows, args.cols)
        figures["cost"] = c
        s, cli = c["stream"], c["cli"]
        print(f"\n== cost: {args.rows:,} rows x {args.cols} columns (fresh process each)")
        print(f"streamed checks: {s['seconds']:.1f}s, {args.rows / s['seconds']:,.0f} rows/s, "
              f"peak RSS {s['rss_mb']:.0f} MB")  # fmt: skip
        print(f"thunderbolt validate --dataset big.parquet: {cli['seconds']:.1f}s, "
              f"{args.rows / cli['seconds']:,.0f} rows/s, peak RSS {cli['rss_mb']:.0f} MB "
              "(targets < 120 s, < 1024 MB)")  # fmt: skip
        ok &= max(s["seconds"], cli["seconds"]) < 120 and max(s["rss_mb"], cli["rss_mb"]) < 1024
    if "overhead" not in args.skip:
        measures = [("in-process train()", overhead, "CPU seconds")]
        if "process" not in args.skip:
            measures.append(("whole trainer process", process_overhead, "wall seconds"))
        for label, measure, unit in measures:
            o = measure(args.repeats)
            figures[label] = o
            print(f"\n== overhead of checks=cheap vs off, {label} (median of {args.repeats}, "
                  f"{unit})")  # fmt: skip
            for r in o:
                print(f"{r['dataset'] + '/' + r['model']:<24} off {r['off_s']:6.2f}s  cheap "
                      f"{r['cheap_s']:6.2f}s  overhead {r['overhead']:+.1%}")  # fmt: skip
            worst = max(r["overhead"] for r in o)
            total = sum(r["cheap_s"] for r in o) / sum(r["off_s"] for r in o) - 1
            print(f"all together {total:+.1%}, worst {worst:+.1%} (target <= 10%)")
            figures[label + " total"] = total
            ok &= total <= 0.10
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
