"""Run the inference server as a real subprocess on a free port (no cluster needed)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import requests

from thunderbolt.settings import free_port  # noqa: F401  (re-exported for the tests)


class ServerProcess:
    """``python -m thunderbolt.serving ARGS`` with its log in a file, stopped by SIGTERM."""

    def __init__(
        self, *args: str, log_dir: pathlib.Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.url}"
        self.log_path = log_dir / f"server-{self.port}.log"
        self._terminated = False
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "thunderbolt.serving",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.base + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.base + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def wait_listening(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                self.get("/v2/health/live")
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"server not listening after {timeout}s:\n{self.logs()}")

    def wait_ready(self, timeout: float = 90.0) -> None:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.get("/v2/health/ready").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """One SIGTERM only: a second one could hit the interpreter's exit after the
        server removed its handler, and the default action would turn exit 0 into -15."""
        if self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        self.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code
