from __future__ import annotations

import http.server
import json
import threading

from thunderbolt.sdk.callbacks import GuardedReporter, NoopReporter, make_reporter
from thunderbolt.trainer.run import train


def test_without_report_config_reports_go_nowhere(make_config):
    reporter = make_reporter(make_config())
    assert isinstance(reporter, NoopReporter)
    assert reporter.epoch(1, {"val_accuracy": 0.5}) is False


def test_report_config_picks_the_http_reporter(make_config, tmp_path):
    reporter = make_reporter(make_config(report={"url": "http://127.0.0.1:9", "tokenFile": "x"}))
    assert type(reporter).__name__ == "HttpReporter"


class Broken:
    def start(self) -> None:
        raise ConnectionError("operator away")

    def epoch(self, step, metrics) -> bool:
        raise ConnectionError("operator away")

    def stop(self, result) -> None:
        raise ConnectionError("operator away")


def test_a_failing_reporter_never_stops_training(make_config, tmp_path):
    result, code = train(
        make_config(epochs=2), str(tmp_path), emit=lambda m: None, reporter=Broken()
    )
    assert code == 0 and result.status == "Succeeded"
    assert GuardedReporter(Broken()).epoch(1, {}) is False


def test_operator_answer_prune_over_http_ends_the_run_as_pruned(make_config, tmp_path):
    received: list[dict] = []

    class Operator(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body | {"auth": self.headers["Authorization"]})
            reply = json.dumps({"prune": body.get("step") == 3}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Operator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        config = make_config(epochs=10, report={"url": url, "tokenFile": str(token)})
        result, code = train(config, str(tmp_path / "out"), emit=lambda m: None)
    finally:
        server.shutdown()
    assert code == 0 and result.status == "Pruned" and result.epochs == 3
    kinds = [r["kind"] for r in received]
    assert kinds == ["start", "epoch", "epoch", "epoch", "stop"]
    assert received[-1]["status"] == "Pruned"
    assert all(r["auth"] == "Bearer secret-token" for r in received)
    assert (tmp_path / "out" / "model.onnx").exists()
