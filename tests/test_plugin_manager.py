"""Finding and registering plugins: isolation of broken ones, key ownership, the allow-list, the reports."""

import types

import pytest
from marshmallow import fields

from modelhub import hookimpl
from modelhub.plugin_manager import PluginHost, create_plugin_host


def plugin_module(name: str, **functions) -> types.ModuleType:
    module = types.ModuleType(name)
    for function_name, function in functions.items():
        setattr(module, function_name, function)
    return module


def test_every_built_in_plugin_loads_from_its_entry_point():
    host = create_plugin_host()
    built_in = {"default_loader", "legacy_keys", "rocm_eager_attention", "bitsandbytes", "device_map", "gptq", "gguf", "safety"}
    loaded = {r.name for r in host.plugin_reports() if r.loaded}
    assert built_in <= loaded


def test_misspelled_hook_is_refused_and_reported():
    host = PluginHost(allow=set())

    @hookimpl
    def adjust_load_kwarg(kwargs):  # noqa: missing "s": must not silently never run
        return None

    with pytest.raises(Exception, match="adjust_load_kwarg"):
        host.register(plugin_module("typo", adjust_load_kwarg=adjust_load_kwarg), "typo")
    assert host.pm.get_plugin("typo") is None
    assert "typo" not in host.reports


def test_a_key_owned_by_another_plugin_is_refused():
    host = PluginHost(allow=set())

    @hookimpl
    def load_config_fields():
        return {"dtype": fields.String()}

    host.register(plugin_module("first", load_config_fields=load_config_fields), "first")
    with pytest.raises(ValueError, match=r"dtype \(first\)"):
        host.register(plugin_module("second", load_config_fields=load_config_fields), "second")
    assert host.key_owners == {"dtype": "first"}


def test_call_each_isolates_a_raising_plugin_and_attributes_results():
    host = PluginHost(allow=set())

    @hookimpl
    def describe_environment(environment):
        raise RuntimeError("broken")

    @hookimpl
    def describe_fine(environment):
        return {"ok": True}

    host.register(plugin_module("broken", describe_environment=describe_environment), "broken")
    host.register(plugin_module("fine", describe_environment=describe_fine), "fine")
    calls = {call.plugin: call for call in host.call_each("describe_environment", environment={})}
    assert isinstance(calls["broken"].error, RuntimeError)
    assert calls["fine"].result == {"ok": True}


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(with_test_plugins, tmp_path, monkeypatch):
    site = tmp_path / "broken-site"
    (site / "broken_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "broken_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (site / "broken_plugin-1.0.dist-info" / "entry_points.txt").write_text("[modelhub]\nbroken = broken_plugin\n")
    (site / "broken_plugin.py").write_text("raise ImportError('needs a package that is not installed')\n")
    monkeypatch.syspath_prepend(str(site))

    host = create_plugin_host()
    report = host.reports["broken"]
    assert not report.loaded
    assert report.error == "ImportError: needs a package that is not installed"
    assert host.reports["example"].loaded and host.reports["default_loader"].loaded


def test_load_plugins_allow_list(monkeypatch):
    monkeypatch.setenv("MODELHUB_LOAD_PLUGINS", "legacy_keys, safety")
    assert [r.name for r in create_plugin_host().plugin_reports()] == ["legacy_keys", "safety"]
    monkeypatch.setenv("MODELHUB_LOAD_PLUGINS", "")
    assert create_plugin_host().plugin_reports() == []


def test_api_plugins_lists_hooks_and_keys(client):
    plugins = {p["name"]: p for p in client.get("/api/plugins").json}
    assert plugins["legacy_keys"]["keys"][:2] == ["bnb_4bit_compute_dtype", "bnb_4bit_quant_type"]
    assert "adjust_load_kwargs" in plugins["legacy_keys"]["hooks"]
    assert plugins["default_loader"]["hooks"] == ["adjust_load_kwargs", "describe_environment", "explain_failure",
                                                  "load_config_fields", "load_model", "plan_load", "propose_configs"]
    assert all(p["loaded"] for p in plugins.values())
