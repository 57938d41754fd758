"""A small world of Experiment/Trial/Secret objects in a MemoryStore, for service tests."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from thunderbolt.api.report_secret import build_report_secret
from thunderbolt.reports.service import ReportService, ServiceConfig
from thunderbolt.reports.store import MemoryStore

NS = "team-a"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def experiment(name: str = "exp", pruner: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "pruner": pruner or {"name": "none"},
        },
    }


def trial(
    name: str,
    *,
    experiment: str = "exp",
    number: int = 0,
    phase: str = "Pending",
    intermediate: list[tuple[int, float]] | None = None,
    objective: float | None = None,
    direction: str = "maximize",
    epochs: int = 10,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if intermediate:
        status["intermediate"] = [{"step": s, "value": v} for s, v in intermediate]
    if objective is not None:
        status["objective"] = objective
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"thunderbolt.io/experiment": experiment},
        },
        "spec": {
            "experiment": experiment,
            "number": number,
            "objective": {"metric": "val_accuracy", "direction": direction},
            "template": {"epochs": epochs},
        },
        "status": status,
    }


@dataclass
class World:
    store: MemoryStore = field(default_factory=MemoryStore)
    tokens: dict[str, str] = field(default_factory=dict)
    config: ServiceConfig = field(default_factory=ServiceConfig)
    service: ReportService | None = None

    def add_experiment(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.store.put("experiments", obj)

    def add_trial(self, obj: dict[str, Any], *, with_secret: bool = True) -> dict[str, Any]:
        stored = self.store.put("trials", obj)
        if with_secret:
            secret = build_report_secret(stored)
            self.store.put("secrets", secret)
            self.tokens[obj["metadata"]["name"]] = base64.b64decode(
                secret["data"]["token"]
            ).decode()
        return stored

    def get(self, name: str) -> dict[str, Any]:
        obj = run(self.store.get_trial(NS, name))
        assert obj is not None
        return obj

    def svc(self) -> ReportService:
        if self.service is None:
            self.service = ReportService(self.store, self.config)
        return self.service

    async def apost(
        self,
        name: str,
        body: Any,
        *,
        token: str | None = None,
        auth: str | None = None,
        content_type: str | None = "application/json",
        namespace: str = NS,
        source: str = "10.88.0.7",
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if auth is None:
            auth = f"Bearer {token if token is not None else self.tokens.get(name, 'x' * 43)}"
        status, reply, _ = await self.svc().handle(
            namespace, name, authorization=auth, content_type=content_type, body=raw, source=source
        )
        return status, reply

    def post(self, name: str, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        return run(self.apost(name, body, **kwargs))


def epoch(step: int, value: float, **extra: float) -> dict[str, Any]:
    return {"kind": "epoch", "step": step, "metrics": {"val_accuracy": value, **extra}}


class RunningEndpoint:
    """The report endpoint's real aiohttp server on 127.0.0.1, in its own loop thread."""

    def __init__(self, world: World) -> None:
        from thunderbolt.reports.server import ReportServer

        self.world = world
        self.loop = asyncio.new_event_loop()
        self.server = ReportServer(world.store, host="127.0.0.1", port=0, config=world.config)
        world.service = self.server.service
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.base = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
