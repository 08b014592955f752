"""``GET /api/models/{name}/configs`` and ``POST .../configs/{number}/restore``: the history with diffs,
restore under the ETag rules every write follows, and bad requests that change nothing; the PATCHes
record who made a change from two optional headers (their bodies are as before)."""

import pytest
from sqlalchemy import create_engine, text

NAME = "microsoft/phi-2"
API = f"/api/models/{NAME}"
EAGER = '{"attn_implementation": "eager"}'
BF16 = '{"attn_implementation": "eager", "torch_dtype": "bfloat16"}'


@pytest.fixture
def phi(client, app):
    """phi-2 registered without a load config, then edited twice: versions 1 (created), 2, 3."""
    app.config["MODELHUB_HOST_NAME"] = "cuda-laptop"
    assert client.post("/api/models", json={"model_name": NAME}).status_code == 201
    assert client.patch(f"{API}/config", json={"load_config": EAGER}).status_code == 200
    response = client.patch(f"{API}/config", json={"load_config": BF16})
    assert response.status_code == 200
    return response.headers["ETag"]


@pytest.fixture
def snapshot(app, stored):
    """The model's row and all of its versions, straight from the database."""

    def read():
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        try:
            with engine.connect() as connection:
                versions = [tuple(row) for row in connection.execute(text(
                    "SELECT number, load_config, source, via, restored_from FROM load_config_version ORDER BY id"))]
        finally:
            engine.dispose()
        return stored(NAME), versions

    return read


def test_the_history_lists_every_version_newest_first_with_what_changed(client, phi):
    response = client.get(f"{API}/configs")

    assert response.status_code == 200
    history = response.json
    assert history["model_name"] == NAME and history["current"] == 3
    assert [(v["number"], v["source"], v["via"], v["current"]) for v in history["items"]] == [
        (3, "typed", "api", True), (2, "typed", "api", False), (1, "created", "api", False)]
    newest = history["items"][0]
    assert newest["load_config"] == BF16 and newest["previous"] == 2 and newest["host"] == "cuda-laptop"
    assert newest["diff"]["added"] == [{"key": "torch_dtype", "value": "bfloat16"}]
    assert newest["diff"]["removed"] == [] and newest["diff"]["changed"] == []
    assert newest["created_at"].endswith("+00:00")
    assert history["items"][1]["diff"]["added"] == [{"key": "attn_implementation", "value": "eager"}]
    assert history["items"][2]["load_config"] is None and history["items"][2]["previous"] is None
    assert newest["loads"] == {"success": 0, "failure": 0, "interrupted": 0, "running": 0}


def test_a_changed_key_shows_its_old_and_new_value(client, phi):
    client.patch(f"{API}/config", json={"load_config": '{"attn_implementation": "sdpa", "torch_dtype": "bfloat16"}'})
    newest = client.get(f"{API}/configs").json["items"][0]
    assert newest["diff"]["changed"] == [{"key": "attn_implementation", "from": "eager", "to": "sdpa"}]


def test_one_version(client, phi):
    response = client.get(f"{API}/configs/2")
    assert response.status_code == 200
    assert (response.json["number"], response.json["load_config"], response.json["current"]) == (2, EAGER, False)


def test_restore_with_the_current_etag_makes_a_new_version_and_moves_the_etag(client, phi, snapshot):
    response = client.post(f"{API}/configs/1/restore", headers={"If-Match": phi})

    assert response.status_code == 201, response.json
    assert (response.json["number"], response.json["source"], response.json["restored_from"]) == (4, "restore", 1)
    assert response.json["load_config"] is None and response.json["current"] is True
    assert response.json["diff"]["removed"] == [{"key": "attn_implementation", "value": "eager"},
                                                {"key": "torch_dtype", "value": "bfloat16"}]
    assert response.headers["Location"] == f"{API}/configs/4"
    model = client.get(API)
    assert model.json["load_config"] is None
    assert response.headers["ETag"] == model.headers["ETag"] != phi
    row, versions = snapshot()
    assert versions[-1] == (4, None, "restore", "api", 1)
    # A PATCH with the old ETag is now refused: the restore was a write like any other.
    assert client.patch(f"{API}/config", json={"load_config": EAGER}, headers={"If-Match": phi}).status_code == 412


def test_restore_without_if_match_or_with_star_is_applied(client, phi):
    assert client.post(f"{API}/configs/2/restore").status_code == 201
    assert client.post(f"{API}/configs/3/restore", headers={"If-Match": "*"}).status_code == 201
    sources = [(v["number"], v["source"], v["restored_from"]) for v in client.get(f"{API}/configs").json["items"][:2]]
    assert sources == [(5, "restore", 3), (4, "restore", 2)]


def test_restore_with_a_stale_etag_is_412_with_the_current_one_and_changes_nothing(client, phi, snapshot):
    client.patch(f"{API}/config", json={"compatibility_notes": "someone else's edit"})
    before = snapshot()

    response = client.post(f"{API}/configs/1/restore", headers={"If-Match": phi})

    assert response.status_code == 412 and response.json["code"] == 412
    assert response.headers["ETag"] == f'"{before[0]["id"]}.{before[0]["version"]}"'
    assert snapshot() == before


def test_restoring_the_config_in_force_is_409_and_changes_nothing(client, phi, snapshot):
    before = snapshot()

    current = client.post(f"{API}/configs/3/restore", headers={"If-Match": phi})

    assert current.status_code == 409
    assert "in force already" in current.json["message"]
    assert snapshot() == before


@pytest.mark.parametrize("number", ["4", "0", "-1", "abc", "1.0", "99999999999", "2147483648", "%C2%B2", "1e3"])
def test_an_unknown_or_malformed_version_number_is_404_and_changes_nothing(client, phi, snapshot, number):
    before = snapshot()

    restore = client.post(f"{API}/configs/{number}/restore", headers={"If-Match": phi})
    read = client.get(f"{API}/configs/{number}")

    assert restore.status_code == 404 and read.status_code == 404
    assert set(restore.json) == {"code", "status", "message"} and restore.json["code"] == 404
    assert "load_config version" in restore.json["message"]
    assert snapshot() == before


def test_an_unknown_model_is_404(client):
    for response in (client.get("/api/models/nobody/configs"), client.post("/api/models/nobody/configs/1/restore"),
                     client.get("/api/models/org/nobody/configs/1")):
        assert response.status_code == 404 and "No model named" in response.json["message"]


def test_a_model_name_ending_in_configs_is_refused(client):
    response = client.post("/api/models", json={"model_name": "org/configs"})
    assert response.status_code == 422
    assert "configs endpoint" in response.json["errors"]["json"]["model_name"][0]


def test_restoring_a_config_a_patch_would_refuse_today_is_422_and_changes_nothing(client, app, phi, snapshot):
    # An imported old version may hold a key of a plugin that is not installed here.
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE load_config_version SET load_config = :text WHERE number = 2"),
                               {"text": '{"flash_magic": true}'})
    finally:
        engine.dispose()
    before = snapshot()

    response = client.post(f"{API}/configs/2/restore", headers={"If-Match": phi})

    assert response.status_code == 422
    assert "cannot be saved again" in response.json["message"] and "flash_magic" in response.json["message"]
    assert snapshot() == before


# ---- who made a change: the PATCHes' optional headers ---------------------------------------------


@pytest.mark.parametrize("path, body", [
    (f"{API}/config", {"load_config": '{"device_map": "auto"}'}),
    (API, {"config": {"load_config": '{"device_map": "auto"}'}}),
])
def test_the_modal_says_a_saved_suggestion_came_from_the_page(client, phi, path, body):
    response = client.patch(path, json=body, headers={"X-Modelhub-Via": "page", "X-Load-Config-Source": "suggestion"})

    assert response.status_code == 200
    newest = client.get(f"{API}/configs").json["items"][0]
    assert (newest["number"], newest["source"], newest["via"]) == (4, "suggestion", "page")


@pytest.mark.parametrize("headers", [{"X-Modelhub-Via": "cli"}, {"X-Load-Config-Source": "restore"},
                                     {"X-Load-Config-Source": ""}])
def test_an_unknown_origin_header_is_422_and_changes_nothing(client, phi, snapshot, headers):
    before = snapshot()

    response = client.patch(f"{API}/config", json={"load_config": EAGER}, headers=headers)

    assert response.status_code == 422
    assert set(response.json["errors"]["headers"]) == set(headers)
    assert snapshot() == before


def test_the_patches_document_the_origin_headers(client):
    spec = client.get("/api/openapi.json").json
    for path in ("/api/models/{model_name}", "/api/models/{model_name}/config"):
        parameters = {p["name"]: p for p in spec["paths"][path]["patch"]["parameters"]}
        assert parameters["X-Modelhub-Via"]["schema"]["enum"] == ["api", "page"]
        assert parameters["X-Load-Config-Source"]["schema"]["enum"] == ["typed", "suggestion"]
        assert "If-Match" in parameters
    restore = spec["paths"]["/api/models/{model_name}/configs/{number}/restore"]
    assert {"name": "number", "in": "path"}.items() <= restore["parameters"][0].items()
    assert restore["parameters"][0]["schema"]["type"] == "integer"
    assert spec["components"]["schemas"]["ConfigSource"]["enum"][:3] == ["existing", "created", "typed"]


@pytest.mark.parametrize("method, path", [("patch", "/configs/1"), ("delete", "/configs/1"),
                                          ("patch", "/configs/1/restore"), ("get", "/configs/1/restore")])
def test_a_method_a_version_url_does_not_have_is_405_and_never_reaches_a_model(client, phi, snapshot, method, path):
    """No model name has a second '/': PATCH .../configs/1 is not an edit of a model named 'phi-2/configs/1'."""
    before = snapshot()

    response = getattr(client, method)(API + path, json={"config": {"compatibility_notes": "x"}})

    assert response.status_code == 405 and response.headers["Allow"]
    assert snapshot() == before
