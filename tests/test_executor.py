"""Every registered executor passes ``eacps.testing.ExecutorConformance``: ``inline`` and ``local`` here, ``ray``
(on a local 2-CPU Ray) when its distribution is installed."""

from __future__ import annotations

import pytest

from eacps.engine.executor import InlineExecutor, LocalExecutor, LocalParams
from eacps.testing import ExecutorConformance


class TestInProcessExecutors(ExecutorConformance):
    covers = ("inline", "local")

    @pytest.fixture(params=["inline", "local", "local-1"])
    def make_executor(self, request):
        return {"inline": InlineExecutor, "local": LocalExecutor,
                "local-1": lambda: LocalExecutor(LocalParams(max_inflight=1))}[request.param]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("eacps_ray")
    if ray.is_initialized():  # another module's session: use it as is
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


class TestRayExecutor(ExecutorConformance):
    pytestmark = pytest.mark.slow  # starts Ray actors (and kills some)
    covers = ("ray",)
    retries = 1  # max_task_retries below
    isolates_crashes = True

    @pytest.fixture
    def make_executor(self, local_ray):
        from eacps_ray import RayExecutor, RayParams

        return lambda: RayExecutor(RayParams(cpus_per_actor=0.5, max_task_retries=self.retries, max_restarts=3))
