"""A moment in an imported file outside the years 1970-2999 (the document's pattern says the same) is a
422 naming the field, not a 500 (found by the fuzzer: ``0001-01-01T00:00:00+00:01`` leaves the years
datetime holds once converted to UTC), and nothing is imported."""

import pytest

REPORT = {"format": "modelhub-compatibility-report", "version": 1, "model_name": "org/model", "hf_path": "org/model",
          "load_config": None, "proven_on": {"started_at": "2000-01-01T00:00:00Z"}}


@pytest.mark.parametrize("field, moment", [("finished_at", "0001-01-01T00:00:00+00:01"),
                                           ("started_at", "9999-12-31T23:59:59-00:01"),
                                           ("started_at", "1969-12-31T23:59:59+00:00")])
def test_a_moment_out_of_range_in_utc_is_refused(client, field, moment):
    body = {**REPORT, "proven_on": {**REPORT["proven_on"], field: moment}}
    response = client.post("/api/import", json=body)
    assert response.status_code == 422, response.json
    assert response.json["errors"]["json"]["proven_on"][field] == ["Must be in the years 1970 to 2999."]
    assert client.get("/api/models").json["pagination"]["total"] == 0
