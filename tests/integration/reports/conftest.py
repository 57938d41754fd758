"""Report endpoint tests on the real local cluster (endpoint processes, operator process)."""

from tests.fixtures.crds import crds  # noqa: F401
from tests.fixtures.operator import operator_process  # noqa: F401
