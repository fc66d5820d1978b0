from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CORE_TESTS = HERE.parents[2] / "tests"  # the core's toy plugin (tests/toy.py)
PYTHONPATH = [str(HERE), str(CORE_TESTS)]
sys.path[:0] = [p for p in PYTHONPATH if p not in sys.path]

import crashy  # noqa: E402
import toy  # noqa: E402

from eacps import plugins  # noqa: E402


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (2 CPUs); executors find it initialized and use it as is."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def test_plugins():
    """The toy and crashy plugins registered in process (actors import them through plugin_modules)."""
    plugins.register_plugin(toy)
    plugins.register_plugin(crashy)
    try:
        yield
    finally:
        plugins.unregister_plugin(crashy)
        plugins.unregister_plugin(toy)
