"""ETags on every response; If-Match guards writes (412, nothing changed); If-None-Match gives 304."""

import pytest

NAME = "microsoft/phi-2"


@pytest.fixture
def etag(client):
    return client.post("/api/models", json={"model_name": NAME}).headers["ETag"]


WRITES = [
    ("patch", f"/api/models/{NAME}/config", {"compatibility_status": "degraded"}),
    ("patch", f"/api/models/{NAME}/metadata", {"mmlu_score": 72.5}),
    ("patch", f"/api/models/{NAME}", {"config": {"compatibility_notes": "x"}, "metadata": {"mbpp_score": 1}}),
    ("delete", f"/api/models/{NAME}", None),
]


@pytest.mark.parametrize("method, path, body", WRITES)
def test_write_with_current_etag_succeeds(client, etag, method, path, body):
    response = getattr(client, method)(path, json=body, headers={"If-Match": etag})
    assert response.status_code in (200, 204)


@pytest.mark.parametrize("method, path, body", WRITES)
def test_write_with_stale_etag_is_412_and_changes_nothing(client, etag, stored, method, path, body):
    client.patch(f"/api/models/{NAME}/config", json={"compatibility_notes": "someone else's edit"})
    before = stored(NAME)

    response = getattr(client, method)(path, json=body, headers={"If-Match": etag})

    assert response.status_code == 412
    assert response.json["code"] == 412
    assert "was changed since you read it" in response.json["message"]
    assert response.headers["ETag"] == f'"{before["id"]}.{before["version"]}"'
    assert stored(NAME) == before


@pytest.mark.parametrize("header", ['"garbage"', "garbage", 'W/"1.1"', '"", ,,', "\x7f"])
def test_unmatchable_if_match_is_412_not_500(client, etag, stored, header):
    before = stored(NAME)
    response = client.patch(f"/api/models/{NAME}/config", json={"compatibility_status": "degraded"}, headers={"If-Match": header})
    assert response.status_code == 412
    assert stored(NAME) == before


def test_if_match_star_and_lists(client, etag):
    assert client.patch(f"/api/models/{NAME}/config", json={"compatibility_notes": "a"}, headers={"If-Match": "*"}).status_code == 200
    current = client.get(f"/api/models/{NAME}").headers["ETag"]
    response = client.patch(
        f"/api/models/{NAME}/config", json={"compatibility_notes": "b"}, headers={"If-Match": f'"0.0", {current}'}
    )
    assert response.status_code == 200


def test_etag_changes_with_every_write_and_matches_the_get(client, etag):
    written = client.patch(f"/api/models/{NAME}/metadata", json={"mmlu_score": 1})
    assert written.headers["ETag"] != etag
    assert client.get(f"/api/models/{NAME}").headers["ETag"] == written.headers["ETag"]


def test_etag_of_a_re_registered_model_differs(client, etag):
    client.delete(f"/api/models/{NAME}")
    again = client.post("/api/models", json={"model_name": NAME})
    assert again.headers["ETag"] != etag


def test_if_none_match_gives_304(client, etag):
    response = client.get(f"/api/models/{NAME}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize("path", ["/api/models", "/api/models?status=unknown", "/api/openapi.json", "/api/models/nope"])
def test_every_response_carries_an_etag(client, etag, path):
    assert client.get(path).headers.get("ETag")


def test_list_etag_changes_when_a_model_changes(client, etag):
    before = client.get("/api/models").headers["ETag"]
    client.patch(f"/api/models/{NAME}/config", json={"compatibility_status": "testing"})
    assert client.get("/api/models").headers["ETag"] != before
