"""Calibration from real loads: each attempt stores preflight's prediction and the worker's measured peak,
and after three loads preflight shows its error here and corrects by it."""

from tests.loading.conftest import Loader


def test_three_real_loads_calibrate_the_next_preflight(database_url, tmp_path, tiny_models):
    from modelhub.app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120,
                      "MODELHUB_HOME": str(tmp_path / "home")})
    loader = Loader(app)
    try:
        loader.register("gpt2", tiny_models["gpt2"])
        assert loader.client.get("/api/models/gpt2/preflight").json["calibration"] is None
        for _ in range(3):
            attempt = loader.load_and_wait("gpt2")
            assert attempt["outcome"] == "success", attempt
            predicted, measured = attempt["predicted_peak"]["host_bytes"], attempt["measured_peak"]["host_peak_rss_bytes"]
            assert abs(predicted / measured - 1) < 0.25, (predicted, measured)
            assert attempt["measured_peak"]["host_baseline_rss_bytes"] < measured
            loader.client.post("/api/models/gpt2/unload")
        answer = loader.client.get("/api/models/gpt2/preflight").json
    finally:
        app.extensions["modelhub.supervisor"].shutdown()
    calibration = answer["calibration"]
    assert calibration["loads"] == 3 and "over 3 loads" in calibration["text"], calibration
    assert "calibration" in [term["name"] for term in answer["devices"][0]["terms"]]
