from thunderbolt.cli import build_parser
from thunderbolt.cli.operator import settings_from_args


def parse(*argv: str):
    return build_parser().parse_args(["operator", *argv])


def test_flags_pick_namespaces_ports_and_kubeconfig():
    args = parse(
        "--namespace", "a", "-n", "b", "--metrics-port", "9100", "--kubeconfig", "/k",
        "--context", "ctx",
    )  # fmt: skip
    settings = settings_from_args(args, env={"THUNDERBOLT_NAMESPACES": "other"})
    assert settings.namespaces == ("a", "b")
    assert settings.metrics_port == 9100
    assert (settings.kubeconfig, settings.kube_context) == ("/k", "ctx")


def test_all_namespaces_overrides_the_environment():
    settings = settings_from_args(parse("--all-namespaces"), env={"THUNDERBOLT_NAMESPACES": "x"})
    assert settings.namespaces == () and settings.clusterwide


def test_without_flags_the_environment_decides():
    settings = settings_from_args(parse(), env={"THUNDERBOLT_NAMESPACES": "x,y"})
    assert settings.namespaces == ("x", "y")


def test_port_zero_becomes_a_free_port():
    settings = settings_from_args(parse("--report-port", "0", "--health-port", "0"), env={})
    assert settings.report_port != 0 and settings.health_port != 0
