"""The application factory and the pages."""

import subprocess
import sys

from modelhub.app import create_app

NO_ML_IN_WEB_PROCESS = """
import sys, tempfile
from modelhub.app import create_app
app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///" + tempfile.mkdtemp() + "/models.db"})
client = app.test_client()
client.post("/api/models", json={"model_name": "gpt2", "load_config": {"device_map": "auto"}})
for path in ("/", "/api/models", "/api/models/gpt2", "/api/openapi.json"):
    assert client.get(path).status_code == 200, path
client.patch("/api/models/gpt2", json={"config": {"compatibility_status": "compatible"}, "metadata": {"mmlu_score": 1}})
heavy = sorted(m for m in ("torch", "transformers", "accelerate", "bitsandbytes") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_web_process_never_imports_ml_libraries():
    result = subprocess.run([sys.executable, "-c", NO_ML_IN_WEB_PROCESS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


def test_test_config_overrides_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELHUB_DATABASE_URL", "sqlite:///" + str(tmp_path / "env.db"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'given.db'}"})
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("given.db")
    assert not (tmp_path / "env.db").exists()


def test_models_page_lists_models_with_their_status_badge(client):
    client.post("/api/models", json={"model_name": "microsoft/phi-2", "compatibility_status": "degraded"})
    page = client.get("/models")
    assert page.status_code == 200
    assert "microsoft/phi-2" in page.text
    assert "status-degraded" in page.text


def test_empty_registry_page_says_how_to_add_a_model(client):
    page = client.get("/")
    assert "No models registered yet" in page.text
    assert "modelhub add" in page.text


def test_footer_shows_where_the_registry_is(client, app):
    from modelhub.settings import describe_database

    location = describe_database(app.config["SQLALCHEMY_DATABASE_URI"])
    assert f"Registry: <code>{location}</code>" in client.get("/").text
