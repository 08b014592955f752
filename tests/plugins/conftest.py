"""Fixtures for the built-in plugin tests: the plugin host, this machine's environment, hand-made ones."""

import pytest

from modelhub.loading.pipeline import describe_environment
from modelhub.plugin_manager import create_plugin_host
from tests.plugins.support import BUILTIN


@pytest.fixture
def host():
    """The plugins installed through the ``modelhub`` entry points: the built-in ones, all loaded."""
    host = create_plugin_host()
    failed = {r.name: r.error for r in host.plugin_reports() if not r.loaded}
    assert not failed, failed
    assert BUILTIN <= set(host.reports)
    return host


@pytest.fixture
def environment(host):
    """This machine as the built-in plugin describes it (CPU only here), remote code not allowed."""
    return describe_environment(host, {"allow_remote_code": False})


@pytest.fixture
def rocm_environment(environment):
    """A ROCm machine under WSL with one GPU, for the decisions that depend on it (nothing is loaded on it)."""
    return {**environment, "rocm": "6.4.1", "wsl": True,
            "gpus": [{"index": 0, "name": "AMD Radeon RX 7900 XTX", "memory_bytes": 24 * 2**30}]}
