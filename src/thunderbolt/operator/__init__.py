"""The Thunderbolt operator: Kopf handlers over pure builders.

Layout: ``settings`` (configuration), ``main`` (process start-up), ``handlers`` (thin
Kopf handlers), and pure modules the handlers call: ``validation``, ``search``
(Optuna), ``builders`` (Trial/Job/ConfigMap manifests), ``trialstatus`` (Job/pod ->
Trial status), ``aggregate`` (Trials -> Experiment status), ``kube`` (idempotent API
calls) and ``metrics`` (Prometheus).
"""
