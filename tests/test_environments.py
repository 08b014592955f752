"""The environment fingerprint: what it is made of, what changes it, and one row per distinct one."""

import importlib.metadata

from modelhub import environments
from modelhub.models import Environment


def test_facts_name_host_libraries_and_accelerator():
    facts = environments.read_facts("box")
    assert facts["host"] == "box"
    assert facts["libraries"]["transformers"] == importlib.metadata.version("transformers")
    assert facts["libraries"]["modelhub"] == importlib.metadata.version("modelhub")
    assert facts["runtime"] == (importlib.metadata.version("torch").partition("+")[2] or "default")
    assert facts["accelerator"] == {"vendor": None}  # this machine has no GPU
    assert facts["wsl"] is False


def test_a_library_upgrade_changes_the_fingerprint_a_kernel_update_does_not():
    facts = environments.read_facts("box")
    upgraded = {**facts, "libraries": {**facts["libraries"], "transformers": "99.0.0"}}
    new_kernel = {**facts, "kernel": "7.0.0-microsoft-standard-WSL2"}
    assert environments.fingerprint(upgraded) != environments.fingerprint(facts)
    assert environments.fingerprint(new_kernel) == environments.fingerprint(facts)
    assert environments.fingerprint({**facts, "host": "other"}) != environments.fingerprint(facts)


def test_gfx_names_follow_rocm():
    assert environments.gfx_name(110000) == "gfx1100"
    assert environments.gfx_name(90010) == "gfx90a"
    assert environments.gfx_name(100300) == "gfx1030"
    assert environments.gfx_name(90402) == "gfx942"


def test_one_row_per_environment_and_host_name_from_settings(app, monkeypatch):
    with app.app_context():
        first = environments.current_id(app)
        assert environments.current_id(app) == first
        environments.forget_cached(app)
        assert environments.current_id(app) == first  # the same facts: the same row
        row = environments.current(app)
        assert row.facts["libraries"]["torch"] == importlib.metadata.version("torch")

        monkeypatch.setitem(app.config, "MODELHUB_HOST_NAME", "rocm-desktop")
        environments.forget_cached(app)
        other = environments.current_id(app)
        assert other != first
        assert environments.current(app).host == "rocm-desktop"

        real = environments.library_versions()
        monkeypatch.setattr(environments, "library_versions", lambda: {**real, "transformers": "5.25.0"})
        environments.forget_cached(app)
        upgraded = environments.current_id(app)
        assert upgraded not in (first, other)
        assert "transformers 5.25.0" in environments.describe(environments.current(app))
        from modelhub.extensions import db
        assert db.session.query(Environment).count() == 3
        environments.forget_cached(app)


def test_describe_names_the_gpu_its_architecture_and_runtime_in_one_line():
    from types import SimpleNamespace

    facts = environments.read_facts("rocm-desktop")
    gpu = {**facts, "wsl": True, "runtime": "rocm6.2",
           "accelerator": {"vendor": "amd", "devices": [{"name": "Radeon RX 7900 XTX", "architecture": "gfx1100"}]}}
    line = environments.describe(SimpleNamespace(host="rocm-desktop", facts=gpu))
    assert line.startswith("rocm-desktop · Radeon RX 7900 XTX (gfx1100) under WSL · rocm6.2 · transformers ")
    cpu = environments.describe(SimpleNamespace(host="box", facts={**facts, "runtime": "cpu"}))
    assert cpu.startswith("box · CPU only · transformers ")  # the CPU build's "cpu" would only repeat it
    assert environments.describe(None) == "recorded before environments were"
