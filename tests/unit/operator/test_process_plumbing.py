"""Per-process plumbing that must not grow or multiply: one shared ApiClient (one
connection pool), and no per-Trial lock left once the Trial is deleted."""

from __future__ import annotations

from kubernetes import client

from thunderbolt import __version__
from thunderbolt.kubeclient import share_default_client


def test_api_objects_share_one_client_and_its_pool():
    saved_config, saved_client = client.Configuration.get_default_copy(), client.ApiClient._default
    try:
        config = client.Configuration(host="https://127.0.0.1:6443")
        client.Configuration.set_default(config)
        before = client.CustomObjectsApi().api_client
        assert client.CoreV1Api().api_client is not before  # the library's default
        share_default_client(pool_size=24)
        shared = client.CustomObjectsApi().api_client
        assert client.CoreV1Api().api_client is shared
        assert client.BatchV1Api().api_client is shared
        assert shared.rest_client is client.CoreV1Api().api_client.rest_client
        assert shared.configuration.connection_pool_maxsize == 24
        assert shared.configuration.host == "https://127.0.0.1:6443"
        # the API server's audit log tells the operator's requests from others'
        assert shared.user_agent == f"thunderbolt-operator/{__version__}"
        assert client.ApiClient().user_agent != shared.user_agent
    finally:
        client.ApiClient.set_default(saved_client)
        client.Configuration.set_default(saved_config)


def test_a_deleted_trials_lock_and_children_mark_are_dropped():
    from thunderbolt.operator import trials

    lock = trials._lock("ns/e-001")
    assert trials._lock("ns/e-001") is lock and len(trials._lock) >= 1
    size = len(trials._lock)
    trials.CHILDREN.begin("uid-1")
    trials.CHILDREN.end("uid-1", made=True)
    assert trials.CHILDREN.made("uid-1")
    trials.forget("ns", "e-001", "uid-1")
    assert len(trials._lock) == size - 1
    assert not trials.CHILDREN.made("uid-1") and len(trials.CHILDREN) == 0
    assert trials._lock("ns/e-001") is not lock  # a new one if it ever comes back
    trials.forget("ns", "e-001", "uid-1")


def test_a_create_handler_waits_for_the_children_being_made_and_learns_the_outcome():
    import threading
    import time

    from thunderbolt.operator.trials import ChildrenLedger

    ledger = ChildrenLedger()
    assert not ledger.made("t1")  # never attempted here (a restart): the handler makes them
    ledger.begin("t1")
    threading.Timer(0.2, ledger.end, args=("t1", True)).start()
    began = time.monotonic()
    assert ledger.made("t1", wait=10)
    assert time.monotonic() - began < 5  # woke when the attempt ended, not at the timeout
    ledger.begin("t2")
    threading.Timer(0.1, ledger.end, args=("t2", False)).start()
    assert not ledger.made("t2", wait=10)  # the attempt failed: the handler does it
    ledger.begin("t3")
    assert not ledger.made("t3", wait=0.05)  # still under way after the wait: do it
    ledger.end("t3", made=True)
    assert ledger.made("t3") and len(ledger) == 2
