"""Calibration from this host's load attempts: predicted_peak beside measured_peak (SQLite and PostgreSQL)."""

import statistics

from modelhub import environments, preflight
from modelhub.extensions import db
from modelhub.models import Environment, LoadAttempt, ModelRegistry
from modelhub.preflight import calibration, estimate, host as host_facts

MiB = 2**20


def add_attempts(app, model_id, rows, host=None):
    """Finished attempts on ``host`` (this one by default): (kind, raw predicted, measured, baseline)."""
    with app.app_context():
        if host is None:
            environment_id = environments.current_id(app)
        else:
            other = Environment(fingerprint=f"other-{host}", host=host, facts={"host": host})
            db.session.add(other)
            db.session.flush()
            environment_id = other.id
        for kind, raw, measured, baseline in rows:
            db.session.add(LoadAttempt(
                model_id=model_id, previous_status="unknown", outcome="success", environment_id=environment_id,
                environment={"gpus": []},
                predicted_peak={"host_bytes": raw, "raw_host_bytes": raw, "gpu_bytes": None, "verdict": "fits",
                                "plan": {"kind": kind}},
                measured_peak={"host_peak_rss_bytes": measured, "host_baseline_rss_bytes": baseline,
                               "gpu_peak_allocated_bytes": None}))
        db.session.commit()
    host_facts.forget(app)


def check(app, model_id):
    with app.app_context():
        return preflight.check(app, db.session.get(ModelRegistry, model_id))


def test_the_median_ratio_of_this_kind_corrects_the_estimate(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    ratios = [1.10, 1.02, 1.06, 1.20, 1.04]
    add_attempts(app, model_id, [("float32/cpu", 500 * MiB, int(500 * MiB * r), 300 * MiB) for r in ratios])
    add_attempts(app, model_id, [("bnb_4bit/cpu", 500 * MiB, 250 * MiB, 300 * MiB)] * 3)  # another kind
    add_attempts(app, model_id, [("float32/cpu", 500 * MiB, 5000 * MiB, 300 * MiB)] * 9, host="another-host")
    answer = check(app, model_id)
    learned = answer["calibration"]
    assert learned["loads"] == 5 and learned["factor"] == statistics.median(ratios) == 1.06
    assert learned["high"] == round(1.20 / 1.06 - 1, 4) and learned["low"] == round(1 - 1.02 / 1.06, 4)
    assert learned["text"] == "within +13/-4% over 5 loads of this kind here"
    terms = {term["name"]: term for term in answer["devices"][0]["terms"]}
    assert terms["overhead"]["bytes"] == 300 * MiB + estimate.LOAD_MACHINERY and "measured" in terms["overhead"]["detail"]
    base = terms["weights"]["bytes"] + terms["overhead"]["bytes"]
    assert terms["calibration"]["bytes"] == int(base * 0.06)
    assert answer["total_bytes"] - answer["raw_total_bytes"] == terms["calibration"]["bytes"]


def test_too_few_loads_of_a_kind_borrow_from_every_kind_and_none_means_no_calibration(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    assert check(app, model_id)["calibration"] is None
    add_attempts(app, model_id, [("bnb_8bit/cpu", 400 * MiB, 360 * MiB, None)] * 3)
    learned = check(app, model_id)["calibration"]
    assert learned["factor"] == 0.9 and learned["kind"] is None and "of any kind" in learned["text"]


def test_runs_without_both_figures_are_left_out():
    recent = [{"predicted_peak": None, "measured_peak": {"host_peak_rss_bytes": 5}},
              {"predicted_peak": {"raw_host_bytes": 10, "plan": {"kind": "k"}}, "measured_peak": None},
              {"predicted_peak": {"raw_host_bytes": 10, "plan": {"kind": "k"}}, "measured_peak": {"host_peak_rss_bytes": 12}}]
    assert calibration.ratios(recent) == [("k", 1.2)]
    assert calibration.learn(recent, "k") is None  # one load teaches nothing yet


def test_predict_peak_stores_the_raw_figure_that_calibration_reads(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    add_attempts(app, model_id, [("float32/cpu", 100 * MiB, 150 * MiB, 200 * MiB)] * 3)
    with app.app_context():
        predicted = preflight.predict_peak(app, db.session.get(ModelRegistry, model_id), {})
    assert predicted["host_bytes"] > predicted["raw_host_bytes"]  # corrected by x1.5 on weights and overhead
