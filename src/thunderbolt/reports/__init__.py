"""Live trainer reports: start, per-epoch metrics and stop, sent over HTTP to the operator.

Layers, each in its own module so the pure parts are testable without a cluster:

The wire format lives in ``thunderbolt.api.report_schema`` and the per-Trial Secret in
``thunderbolt.api.report_secret`` (shared with the trainer and the operator).

* ``credentials`` — checking a presented per-Trial token against the Trial's Secret.
* ``history``     — what a report does to a Trial's status (pure; idempotency, ordering,
  the bounded ``status.intermediate`` list).
* ``pruning``     — Optuna pruner decisions from Trial statuses (pure).
* ``ratelimit``   — per-Trial token buckets.
* ``store``       — Trial reads and optimistic status patches (Kubernetes or in memory).
* ``writer``      — status writes: optimistic, write-through or write-behind.
* ``cache``       — TTL caches that only ever save API reads.
* ``events``, ``metrics`` — Kubernetes Events (off the request path) and Prometheus.
* ``service``     — one report end to end: auth, limits, persist, prune, events, metrics.
* ``server``      — the aiohttp endpoint; ``handlers`` starts it inside the operator.
"""
