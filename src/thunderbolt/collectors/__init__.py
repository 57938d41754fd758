"""Metrics collectors for containers that do not push reports themselves.

* ``lines``    — metric lines -> numbered samples (pure; Katib's format, JSON lines, regex).
* ``stdout``   — follow a container's log, bounded in rate and memory, into the report service.
* ``handlers`` — the Kopf handlers that start a follower per StdOut Trial pod.

The File collector needs no process of its own: ``operator.trialstatus`` parses the
file's tail from the termination message. See docs/byo-containers.md.
"""
