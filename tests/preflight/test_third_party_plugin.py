"""A third-party plugin teaches preflight its own key through plan_load: the example of docs/plugins.md,
registered on the app's PluginHost for the test."""

import re
import types
from pathlib import Path

import pytest

from modelhub import preflight
from modelhub.extensions import db
from modelhub.models import ModelRegistry
from tests.preflight.conftest import host

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def guide_example():
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("<!-- plan-load-example -->")
    code = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(text, start).group(1)
    module = types.ModuleType("adapter_plugin")
    exec(compile(code, "docs/plugins.md (plan_load example)", "exec"), module.__dict__)
    return module


@pytest.fixture
def adapter_plugin(app):
    plugins = app.extensions["modelhub.plugins"]
    plugins.register(guide_example(), "adapter_example")
    yield
    plugins.unregister("adapter_example")


def test_the_plugins_key_adds_its_term_and_its_package(app, register, tiny_models, tmp_path, adapter_plugin):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 300_000)
    model_id = register("org/llama", tiny_models["llama"])
    config = {"peft_adapter": str(adapter)}
    with app.app_context():
        row = db.session.get(ModelRegistry, model_id)
        plain = preflight.check(app, row, {}, host=host(packages={"peft": "0.17.0"}))
        answer = preflight.check(app, row, config, host=host(packages={"peft": "0.17.0"}))
        missing = preflight.check(app, row, config, host=host(packages={"peft": None}))
    (cpu,) = answer["devices"]
    assert {"name": "weights", "bytes": 300_000, "detail": "LoRA adapter adapter"} in cpu["terms"]
    assert answer["total_bytes"] == plain["total_bytes"] + 300_000
    assert answer["verdict"] == "fits" and f"adapter_example: adapter {adapter}: 300000 bytes" in answer["notes"]
    assert missing["verdict"] == "cannot_load" and missing["problems"][0]["package"] == "peft"
    assert missing["fitting_config"] == {}  # without the adapter


def test_a_broken_plan_load_is_a_note_not_an_error(app, register, tiny_models):
    broken = types.ModuleType("broken_plugin")
    exec("from modelhub import hookimpl\n\n@hookimpl\ndef plan_load(plan):\n    raise RuntimeError('oops')\n",
         broken.__dict__)
    plugins = app.extensions["modelhub.plugins"]
    plugins.register(broken, "broken_example")
    try:
        model_id = register("org/llama", tiny_models["llama"])
        with app.app_context():
            answer = preflight.check(app, db.session.get(ModelRegistry, model_id))
    finally:
        plugins.unregister("broken_example")
    assert answer["verdict"] == "fits"
    assert any("broken_example plugin could not plan" in note and "oops" in note for note in answer["notes"])
