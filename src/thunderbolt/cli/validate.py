"""`thunderbolt validate`: data and model checks (docs/validation.md).

    thunderbolt validate --dataset URI [--target COL] [--validation-fraction F]
        runs the dataset checks locally, without a cluster, on the split the trainer
        would draw (same seed, same fraction); local CSV, Parquet and JSON-lines files
        are streamed in chunks, other URIs (builtin://, s3://, https://) read whole.
    thunderbolt validate TRIAL            the Trial's status.validation
    thunderbolt validate --experiment E   every Trial's verdict and the search ranges' advice

Readable by default, ``-o json`` for scripts. Exit status 3 when the verdict is fail
(the trainer's DatasetError code), 1 on errors, else 0.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np

from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly

CHUNK_ROWS = 100_000
FAIL_EXIT = 3
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json",
               ".jsonl": "json", ".ndjson": "json"}  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="data and model checks: a local dataset, a trial, an experiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trial", nargs="?", help="a Trial whose status.validation to show")
    parser.add_argument("--dataset", metavar="URI", help="check this dataset locally")
    parser.add_argument("--experiment", metavar="NAME", help="summarize an Experiment's trials")
    parser.add_argument("--target", default="target", help="target column (default: target)")
    parser.add_argument("--validation-fraction", type=float, default=0.2, metavar="F",
                        help="share of rows held out, as dataset.validationFraction (0.2)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="split seed (the Experiment's)")
    parser.add_argument("--task", choices=("classification", "regression"),
                        help="default: classification for integer or text targets with few "
                             "values, else regression")  # fmt: skip
    parser.add_argument("--format", choices=("csv", "parquet", "json"), help="default: extension")
    parser.add_argument("--full", action="store_true",
                        help="nearest neighbours on up to 50,000 rows (default 20,000)")  # fmt: skip
    parser.add_argument("--rows", type=int, default=5, help="flagged rows shown per finding")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    chosen = [x for x in (args.trial, args.dataset, args.experiment) if x]
    if len(chosen) != 1:
        raise CliError("give exactly one of TRIAL, --dataset URI or --experiment NAME")
    if args.dataset:
        return validate_dataset(args)
    kube = connect(args)
    if args.experiment:
        return show_experiment(args, kube)
    trial = kube.get("trials", args.trial)
    return show_trial(trial, args.output)


# --- a dataset, locally -------------------------------------------------------------------
def validate_dataset(args: argparse.Namespace) -> int:
    from thunderbolt.trainer.data import split_indices
    from thunderbolt.validation import DatasetOptions, DatasetProfiler, dataset_report

    if not 0.0 < args.validation_fraction < 1.0:
        raise CliError(f"--validation-fraction must be in (0, 1), got {args.validation_fraction}")
    began = time.perf_counter()
    source = _Source(args.dataset, args.format, args.target)
    n = source.count_rows()
    try:
        _train, val_idx = split_indices(n, args.validation_fraction, args.seed)
    except Exception as exc:  # DatasetError: too few rows
        raise CliError(str(exc)) from exc
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    options = DatasetOptions(sample_rows=50_000 if args.full else 20_000, seed=args.seed)
    profiler: DatasetProfiler | None = None
    start = 0
    task = args.task
    for frame in source.frames():
        features = [c for c in frame.columns if c != args.target]
        if profiler is None:
            task = task or _guess_task(frame[args.target])
            profiler = DatasetProfiler([str(c) for c in features], task, options)
        x = _numeric(frame, features)
        y = frame[args.target].to_numpy()
        if task == "classification" and y.dtype.kind == "O":
            y = y.astype(str)
        elif task == "regression":
            y = _numeric(frame, [args.target])[:, 0]
        rows = np.arange(start, start + len(frame), dtype=np.int64)
        val = is_val[start : start + len(frame)]
        profiler.add(x[~val], y[~val], "train", rows[~val])
        profiler.add(x[val], y[val], "val", rows[val])
        start += len(frame)
    if profiler is None or start != n:
        raise CliError(f"read {start} rows of {args.dataset}, expected {n}")
    report = dataset_report(profiler, seconds=time.perf_counter() - began)
    report.context = {"dataset": args.dataset, "task": task, "target": args.target,
                      "seed": args.seed, **report.context}  # fmt: skip
    if args.output == "json":
        print(report.to_json())
    else:
        print(report.render(rows=args.rows))
    return FAIL_EXIT if report.verdict == "fail" else 0


def _guess_task(target: Any) -> str:
    values = target.dropna().to_numpy()
    if values.dtype.kind in "OSUb":
        return "classification"
    integral = bool(np.all(np.mod(values.astype(np.float64), 1.0) == 0))
    return "classification" if integral and len(np.unique(values)) <= 50 else "regression"


def _numeric(frame: Any, columns: list[Any]) -> np.ndarray:
    import pandas as pd

    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            raise CliError(f"column {column!r} is not numeric (e.g. row {int(np.flatnonzero(bad.to_numpy())[0])}); "
                           "encode it as numbers")  # fmt: skip
        out[:, j] = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


class _Source:
    """Local files stream in chunks; anything else is read whole by the trainer's reader."""

    def __init__(self, uri: str, fmt: str | None, target: str) -> None:
        self.uri, self.target = uri, target
        parsed = urlparse(uri)
        self.path: pathlib.Path | None = None
        if parsed.scheme in ("", "file"):
            self.path = pathlib.Path(parsed.path if parsed.scheme else uri)
            if not self.path.is_file():
                raise CliError(f"no such file: {self.path}")
        self.fmt = fmt or _EXTENSIONS.get(pathlib.PurePosixPath(parsed.path).suffix.lower())
        self._frame: Any = None
        if self.path is not None and self.fmt is None:
            raise CliError(f"cannot tell the format of {uri}; pass --format csv|parquet|json")

    def _whole(self) -> Any:
        if self._frame is None:
            from thunderbolt.api.trainer_config import DatasetConfig
            from thunderbolt.sdk.errors import DatasetError
            from thunderbolt.trainer.data import read_frame

            try:
                self._frame, _labels = read_frame(
                    DatasetConfig(uri=self.uri, target=self.target, format=self.fmt)  # type: ignore[arg-type]
                )
            except DatasetError as exc:
                raise CliError(str(exc)) from exc
        if self.target not in self._frame.columns:
            raise CliError(f"target column {self.target!r} not found; columns: "
                           + ", ".join(map(str, self._frame.columns)))  # fmt: skip
        return self._frame

    def count_rows(self) -> int:
        if self.path is None:
            return len(self._whole())
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(self.path).metadata.num_rows)
        lines, last = 0, b"\n"
        with self.path.open("rb") as handle:
            while block := handle.read(1 << 24):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"
        return lines - (1 if self.fmt == "csv" else 0)

    def frames(self) -> Iterator[Any]:
        import pandas as pd

        if self.path is None:
            frame = self._whole()
            for start in range(0, len(frame), CHUNK_ROWS):
                yield frame.iloc[start : start + CHUNK_ROWS]
            return
        try:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=CHUNK_ROWS):
                    yield self._checked(batch.to_pandas())
            elif self.fmt == "csv":
                for frame in pd.read_csv(self.path, chunksize=CHUNK_ROWS):
                    yield self._checked(frame)
            else:
                for frame in pd.read_json(self.path, lines=True, chunksize=CHUNK_ROWS):
                    yield self._checked(frame)
        except (ValueError, OSError) as exc:
            raise CliError(f"cannot read {self.uri} as {self.fmt}: {exc}") from exc

    def _checked(self, frame: Any) -> Any:
        if self.target not in frame.columns:
            raise CliError(f"target column {self.target!r} not found; columns: "
                           + ", ".join(map(str, frame.columns)))  # fmt: skip
        return frame


# --- a trial, an experiment ----------------------------------------------------------------
def trial_text(trial: dict[str, Any]) -> str:
    name = trial["metadata"]["name"]
    status = trial.get("status") or {}
    v = status.get("validation")
    if not v:
        return f"trial {name} ({status.get('phase', 'Pending')}): no validation yet"
    lines = [f"trial {name} ({status.get('phase', 'Pending')}): verdict {v['verdict'].upper()}"]
    if v.get("failed"):
        lines.append("  failed dimensions: " + ", ".join(v["failed"]))
    if v.get("warned"):
        lines.append("  warned dimensions: " + ", ".join(v["warned"]))
    for f in v.get("findings") or []:
        lines.append(f"  [{f['severity']}] {f['kind']}: {f['message']}")
        where = [
            ("rows", f.get("rows")),
            ("columns", f.get("columns")),
            ("layers", f.get("layers")),
        ]
        for label, items in where:
            if items:
                lines.append(f"      {label}: {', '.join(map(str, items))}")
    recs = v.get("recommendations") or []
    if recs:
        lines.append("  recommendations:")
        lines += [f"    {i}. {r['text']}  [{r['action']}]" for i, r in enumerate(recs, 1)]
    if v.get("reportUri"):
        lines.append(f"  full report: {v['reportUri']}")
    return "\n".join(lines)


def show_trial(trial: dict[str, Any], output: str) -> int:
    validation = (trial.get("status") or {}).get("validation")
    if output == "json":
        print(json.dumps(validation or {}, indent=2))
    else:
        print(trial_text(trial))
    return FAIL_EXIT if (validation or {}).get("verdict") == "fail" else 0


def experiment_summary(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The Experiment's ``status.validation``, computed the way the operator does
    (``thunderbolt.validation.across_trials``), with the name and the Trial count."""
    from thunderbolt.validation.across_trials import summarize

    return {
        "experiment": experiment["metadata"]["name"],
        "trials": len(trials),
        **summarize(experiment.get("spec") or {}, trials),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """An Experiment's validation summary, readable (``describe experiment`` too)."""
    counts = ", ".join(f"{key} {summary.get(key, 0)}"
                       for key in ("passed", "warned", "failed", "unchecked"))  # fmt: skip
    found = ", ".join(f"{f['kind']} in {f['trials']}" for f in summary.get("findings") or [])
    lines = [f"  trials: {counts}", f"  findings: {found or 'none'}"]
    recs = summary.get("recommendations") or []
    lines += [f"  {i}. {r['text']}  [{r['action']}]" for i, r in enumerate(recs, 1)]
    return lines


def show_experiment(args: argparse.Namespace, kube: Any) -> int:
    from thunderbolt.cli.trial_reads import trials_of

    experiment = kube.get("experiments", args.experiment)
    summary = experiment_summary(experiment, trials_of(kube, args.experiment, whole=True))
    if args.output == "json":
        print(json.dumps(summary, indent=2))
        return 0
    print(f"experiment {summary['experiment']}: {summary['trials']} trials")
    print("\n".join(summary_lines(summary)))
    return 0
