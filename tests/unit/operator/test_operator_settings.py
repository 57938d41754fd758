from thunderbolt.settings import OperatorSettings, from_env, load_settings


def test_defaults_watch_all_namespaces_with_standard_ports():
    settings = from_env({})
    assert settings == OperatorSettings()
    assert settings.clusterwide
    assert (settings.metrics_port, settings.report_port, settings.health_port) == (8080, 8081, 8082)


def test_environment_variables_are_read():
    settings = from_env(
        {
            "THUNDERBOLT_NAMESPACES": "a, b,,",
            "THUNDERBOLT_MLFLOW_URI": "http://mlflow:5000",
            "THUNDERBOLT_ARTIFACTS_URI": "s3://thunderbolt/models",
            "THUNDERBOLT_S3_ENDPOINT": "http://10.88.0.1:9000",
            "THUNDERBOLT_ARTIFACTS_SECRET": "s3-creds",
            "THUNDERBOLT_REPORT_URL": "http://10.88.0.1:8081",
            "THUNDERBOLT_METRICS_PORT": "9100",
        }
    )
    assert settings.namespaces == ("a", "b")
    assert not settings.clusterwide
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.artifacts_uri == "s3://thunderbolt/models"
    assert settings.s3_endpoint_url == "http://10.88.0.1:9000"
    assert settings.artifacts_credentials_secret == "s3-creds"
    assert settings.report_url == "http://10.88.0.1:8081"
    assert settings.metrics_port == 9100


def test_flags_override_environment_and_none_flags_are_ignored():
    settings = load_settings(
        {"namespaces": ["ns1"], "metrics_port": 9200, "report_url": None},
        env={"THUNDERBOLT_NAMESPACES": "other", "THUNDERBOLT_REPORT_URL": "http://x:1"},
    )
    assert settings.namespaces == ("ns1",)
    assert settings.metrics_port == 9200
    assert settings.report_url == "http://x:1"


def test_port_zero_is_replaced_by_distinct_free_ports():
    settings = load_settings({"metrics_port": 0, "report_port": 0, "health_port": 0}, env={})
    ports = {settings.metrics_port, settings.report_port, settings.health_port}
    assert 0 not in ports
    assert len(ports) == 3


def test_settings_are_frozen():
    settings = OperatorSettings()
    try:
        settings.metrics_port = 1  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("OperatorSettings must be immutable")


def test_excluded_namespaces_are_out_of_scope_even_cluster_wide():
    settings = from_env({"THUNDERBOLT_EXCLUDE_NAMESPACES": "kube-*, secret-team"})
    assert settings.clusterwide and settings.exclude_namespaces == ("kube-*", "secret-team")
    assert settings.in_scope("team-a")
    assert not settings.in_scope("kube-system") and not settings.in_scope("kube-node-lease")
    assert not settings.in_scope("secret-team")
    assert settings.in_scope("secret-team-2")  # globs match whole names
    assert not settings.in_scope(None) and not settings.in_scope("")


def test_watched_namespaces_bound_the_scope_and_exclusions_still_apply():
    settings = load_settings({"namespaces": ["a", "kube-x"], "exclude_namespaces": ["kube-*"]})
    assert settings.in_scope("a")
    assert not settings.in_scope("b")
    assert not settings.in_scope("kube-x")


def test_the_kopf_filter_reads_the_current_settings():
    from thunderbolt.settings import namespace_in_scope, set_current

    set_current(from_env({"THUNDERBOLT_EXCLUDE_NAMESPACES": "kube-system"}))
    try:
        assert namespace_in_scope(namespace="default", spec={}, body={})
        assert not namespace_in_scope(namespace="kube-system", spec={}, body={})
    finally:
        set_current(from_env({}))


def test_reconcile_workers_default_and_bounds():
    import pytest

    assert from_env({}).reconcile_workers == 4
    assert from_env({"THUNDERBOLT_RECONCILE_WORKERS": "8"}).reconcile_workers == 8
    for bad in ("0", "65"):
        with pytest.raises(ValueError, match="RECONCILE_WORKERS must be 1-64"):
            from_env({"THUNDERBOLT_RECONCILE_WORKERS": bad})
