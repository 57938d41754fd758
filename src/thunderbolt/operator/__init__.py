"""The Thunderbolt operator: Kopf handlers over pure builders.

Layout: ``handlers`` (thin Kopf handlers), and pure modules the handlers call:
``validation``, ``search`` (Optuna), ``builders`` (Trial/Job/ConfigMap manifests),
``trialstatus`` (Job/pod -> Trial status), ``aggregate`` (Trials -> Experiment status),
``kube`` (idempotent API calls) and ``metrics`` (Prometheus). Settings live in
``thunderbolt.settings``, the process start-up in ``thunderbolt.main``.
"""
