"""The metric-line parser: Katib's format, JSON lines, custom regexes, and every way a
line can be wrong (counted, never raised)."""

from __future__ import annotations

import pytest

from thunderbolt.api.collector import MetricsCollector
from thunderbolt.metric_lines import MAX_LINE_CHARS, LineParser


def parser(**collector):
    kind = collector.pop("kind", "StdOut")
    return LineParser("val_accuracy", MetricsCollector(kind=kind, **collector))


def test_katib_lines_become_numbered_samples_with_every_metric():
    p = parser()
    first = p.feed("epoch=1 val_accuracy=0.5 loss=0.9")
    assert first is not None
    assert (first.step, first.value) == (1, 0.5)
    assert first.metrics == {"val_accuracy": 0.5, "loss": 0.9}
    second = p.feed("epoch=3 val_accuracy=0.91 loss=0.2")
    assert second is not None and (second.step, second.value) == (3, 0.91)
    assert p.reports == 2 and p.lines == 2 and not p.problems()


def test_lines_without_a_step_key_are_numbered_in_order():
    p = parser()
    samples = p.feed_text("val_accuracy=0.1\nhello\nval_accuracy=0.2, loss=3\n")
    assert [(s.step, s.value) for s in samples] == [(1, 0.1), (2, 0.2)]
    assert samples[1].metrics == {"val_accuracy": 0.2, "loss": 3.0}


def test_ordinary_output_is_read_and_ignored_without_counting():
    p = parser()
    for line in ["Using device=cpu", "train_loss=0.3 epoch=2", "", "=====", "a = b"]:
        assert p.feed(line) is None
    assert p.lines == 5 and p.reports == 0 and p.problems() == {}


def test_bad_report_lines_are_skipped_and_counted_by_cause():
    p = parser(metrics=["loss"])
    assert p.feed("val_accuracy=nan") is None
    assert p.feed("val_accuracy=inf loss=1") is None
    assert p.feed("val_accuracy=abc") is None
    ok = p.feed("val_accuracy=0.7 loss=nan secret=4")
    assert ok is not None and ok.metrics == {"val_accuracy": 0.7}
    assert p.feed("epoch=0.5 val_accuracy=0.8") is None
    assert p.problems() == {"malformed": 2, "nonFinite": 3, "unknownMetric": 1}
    assert p.summary() == "2 malformed, 3 nonFinite, 1 unknownMetric"


def test_steps_that_go_backwards_are_skipped():
    p = parser()
    assert p.feed("epoch=5 val_accuracy=0.5") is not None
    assert p.feed("epoch=5 val_accuracy=0.6") is None
    assert p.feed("epoch=4 val_accuracy=0.6") is None
    assert p.feed("val_accuracy=0.7").step == 6
    assert p.problems() == {"stepBackwards": 2}


def test_over_long_lines_are_counted_not_parsed():
    p = parser()
    assert p.feed("val_accuracy=0.5 " + "x" * MAX_LINE_CHARS) is None
    assert p.problems() == {"tooLong": 1}


def test_json_lines():
    p = parser(kind="File", path="/workspace/m.jsonl", format="JsonLines")
    text = "\n".join(
        [
            '{"epoch": 1, "val_accuracy": 0.4, "loss": 2}',
            "not json at all",
            '{"epoch": 2, "val_accuracy": "high"}',
            '{"epoch": 2, "val_accuracy": 0.6, "tag": "x", "ok": true}',
            "{broken",
            "[1, 2]",
        ]
    )
    samples = p.feed_text(text)
    assert [(s.step, s.value) for s in samples] == [(1, 0.4), (2, 0.6)]
    assert samples[1].metrics == {"val_accuracy": 0.6}
    assert p.problems() == {"malformed": 3 + 1}


def test_custom_regex_with_named_groups():
    p = parser(regex=r"(?P<name>\w+): (?P<value>[-+.\deE]+)")
    sample = p.feed("epoch: 2 | val_accuracy: 0.75 | loss: 0.1")
    assert sample is not None and sample.step == 2
    assert sample.metrics == {"val_accuracy": 0.75, "loss": 0.1}


@pytest.mark.parametrize(
    ("collector", "message"),
    [
        ({"kind": "File"}, "needs a 'path'"),
        ({"kind": "StdOut", "path": "/x"}, "'path' is for kind File"),
        ({"kind": "Push", "regex": "(?P<name>a)(?P<value>b)"}, "apply to StdOut and File"),
        ({"kind": "StdOut", "regex": "(?P<name>a)"}, "named groups ['value']"),
        ({"kind": "StdOut", "regex": "(?P<name>a"}, "does not compile"),
        ({"kind": "StdOut", "regex": r"(?P<name>(\w+)+)=(?P<value>\S+)"}, "backtracking"),
        (
            {"kind": "StdOut", "format": "JsonLines", "regex": "(?P<name>a)(?P<value>b)"},
            "needs format KeyValue",
        ),
        ({"kind": "StdOut", "metrics": ["bad name"]}, "is not a metric name"),
    ],
)
def test_collector_spec_errors_say_what_is_wrong(collector, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        MetricsCollector(**collector)
