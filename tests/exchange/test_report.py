"""A single model's compatibility report, exported from one registry and imported into another."""

import json

from modelhub import registry
from tests.exchange.conftest import fill, register


def report_of(app, name: str) -> str:
    response = app.test_client().get(f"/api/models/{name}/report")
    assert response.status_code == 200, response.json
    return response.get_data(as_text=True)


def post(app, text: str, query: str = ""):
    return app.test_client().post(f"/api/import{query}", data=text, content_type="application/json")


def stored(app, name: str):
    with app.app_context():
        return registry.get_model(name)


def test_a_report_registers_the_model_elsewhere_with_its_working_config(app, other_app):
    fill(app)
    report = report_of(app, "microsoft/phi-2")

    preview = post(other_app, report, "?dry_run=1")
    assert preview.status_code == 200
    assert preview.json["format"] == "modelhub-compatibility-report"
    assert preview.json["summary"]["models_added"] == 1
    assert other_app.test_client().get("/api/models").json["items"] == []

    assert post(other_app, report).status_code == 200
    model = stored(other_app, "microsoft/phi-2")
    assert model.load_config == '{"attn_implementation": "eager",  "dtype": "bfloat16"}'
    assert model.compatibility_status == "unknown"  # proven there, not here
    assert model.quantization == "None"
    assert model.compatibility_notes.startswith("Compatibility report: microsoft/phi-2 loaded with this load config on ")
    assert "torch 2.13.0, transformers 5.24.0, ROCm 6.2.41133, AMD Radeon RX 7900 XTX (24 GiB), WSL" in model.compatibility_notes

    again = post(other_app, report)  # the same report twice: nothing more
    assert again.json["summary"]["models_unchanged"] == 1
    assert stored(other_app, "microsoft/phi-2").compatibility_notes.count("Compatibility report") == 1


def test_a_report_keeps_a_different_local_config_unless_told_to_replace(app, other_app):
    fill(app)
    report = report_of(app, "microsoft/phi-2")
    with other_app.app_context():
        register("microsoft/phi-2", load_config='{"device_map": "auto"}', compatibility_notes="Local notes.")

    kept = post(other_app, report)
    (plan,) = kept.json["models"]
    assert [c["field"] for c in plan["conflicts"]] == ["load_config"]
    model = stored(other_app, "microsoft/phi-2")
    assert model.load_config == '{"device_map": "auto"}'
    assert model.compatibility_notes.startswith("Local notes.\n\nCompatibility report: ")  # added to, not replaced

    post(other_app, report, "?on_conflict=replace")
    assert stored(other_app, "microsoft/phi-2").load_config == '{"attn_implementation": "eager",  "dtype": "bfloat16"}'


def test_a_bad_report_is_refused(app, other_app):
    fill(app)
    report = json.loads(report_of(app, "microsoft/phi-2"))
    del report["proven_on"]
    report["load_config"] = '{"foo_bar": 1}'
    response = post(other_app, json.dumps(report))
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"proven_on", "load_config"}
    assert other_app.test_client().get("/api/models").json["items"] == []
