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
