"""Experiment/Trial tests on the real local cluster, each with its own operator process."""

from tests.fixtures.crds import crds  # noqa: F401
from tests.fixtures.operator import operator_process  # noqa: F401
