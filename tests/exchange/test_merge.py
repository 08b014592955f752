"""Importing into a registry that already holds models: the merge rules of docs/exchange.md."""

import json

from modelhub import registry
from modelhub.exceptions import PlanChanged
from tests.exchange.conftest import export_text, fill, import_text, load_attempt, register

STARTED = "2026-01-05T10:00:00+00:00"


def document(*entries) -> str:
    return json.dumps({"format": "modelhub-registry", "version": 1, "models": list(entries)})


def card(dataset: str) -> dict:
    return {"source": "card", "card": "README.md", "dataset": dataset, "metric": "acc"}


def model(app, name: str) -> dict:
    with app.app_context():
        row = registry.get_model(name)
        return {c: getattr(row, c) for c in ("hf_path", "compatibility_status", "compatibility_notes", "load_config",
                                             "mmlu_score", "gpqa_score", "perplexity", "metric_sources", "version")}


def test_empty_fields_are_filled_and_conflicts_keep_this_registrys_value(app):
    with app.app_context():
        register("microsoft/phi-2", compatibility_status="degraded", compatibility_notes="Works after restart.",
                 mmlu_score=50.0)
    incoming = document({
        "model_name": "microsoft/phi-2", "hf_path": "microsoft/phi-2-gguf", "compatibility_status": "compatible",
        "compatibility_notes": "Something else entirely.", "load_config": '{"attn_implementation": "eager"}',
        "mmlu_score": 56.7, "gpqa_score": 27.5, "metric_sources": {"mmlu_score": card("MMLU"), "gpqa_score": card("GPQA")},
    })

    result = import_text(app, incoming)

    stored = model(app, "microsoft/phi-2")
    assert stored["hf_path"] == "microsoft/phi-2-gguf"  # was the default (the name): filled
    assert stored["load_config"] == '{"attn_implementation": "eager"}'  # was empty: filled
    assert stored["gpqa_score"] == 27.5 and stored["metric_sources"] == {"gpqa_score": card("GPQA")}  # with its source
    assert stored["compatibility_status"] == "degraded"  # conflicts: ours kept
    assert stored["compatibility_notes"] == "Works after restart."
    assert stored["mmlu_score"] == 50.0
    (plan,) = result["models"]
    assert plan["action"] == "update"
    assert {c["field"] for c in plan["conflicts"]} == {"compatibility_status", "compatibility_notes", "mmlu_score"}
    mmlu = next(c for c in plan["conflicts"] if c["field"] == "mmlu_score")
    assert mmlu == {"field": "mmlu_score", "local": "50 (typed)", "imported": "56.7 (card)", "kept": "local"}
    assert result["summary"]["conflicts"] == 3


def test_replace_takes_the_files_values_with_their_sources(app):
    with app.app_context():
        register("microsoft/phi-2", compatibility_status="degraded", mmlu_score=50.0)
    incoming = document({"model_name": "microsoft/phi-2", "compatibility_status": "compatible", "mmlu_score": 56.7,
                         "metric_sources": {"mmlu_score": card("MMLU")}})

    result = import_text(app, incoming, on_conflict="replace")

    stored = model(app, "microsoft/phi-2")
    assert stored["compatibility_status"] == "compatible"
    assert stored["mmlu_score"] == 56.7 and stored["metric_sources"] == {"mmlu_score": card("MMLU")}
    assert all(c["kept"] == "imported" for c in result["models"][0]["conflicts"])
    # And the other way: a typed value from the file replaces a card value and drops its source.
    import_text(app, document({"model_name": "microsoft/phi-2", "mmlu_score": 60.0}), on_conflict="replace")
    assert model(app, "microsoft/phi-2")["metric_sources"] is None


def test_an_import_never_clears_a_value_nor_deletes_a_model(app):
    with app.app_context():
        register("microsoft/phi-2", compatibility_notes="Mine.", load_config='{"dtype": "bfloat16"}', perplexity=8.5)
        register("only-here")
    incoming = document({"model_name": "microsoft/phi-2", "compatibility_notes": None, "load_config": None,
                         "perplexity": None, "compatibility_status": "unknown"})

    result = import_text(app, incoming, on_conflict="replace")

    stored = model(app, "microsoft/phi-2")
    assert (stored["compatibility_notes"], stored["load_config"], stored["perplexity"]) == ("Mine.", '{"dtype": "bfloat16"}', 8.5)
    assert result["summary"]["models_unchanged"] == 1 and result["models"] == []
    with app.app_context():
        assert registry.get_model("only-here")


def test_notes_that_extend_ours_are_taken_without_a_conflict(app):
    with app.app_context():
        register("gpt2", compatibility_notes="Works.")
    result = import_text(app, document({"model_name": "gpt2", "compatibility_notes": "Works.\nAlso on ROCm 6.2."}))
    assert model(app, "gpt2")["compatibility_notes"] == "Works.\nAlso on ROCm 6.2."
    assert result["models"][0]["conflicts"] == []


def test_history_is_the_union_of_both(app, other_app):
    fill(app)
    with other_app.app_context():
        phi = register("microsoft/phi-2")
        load_attempt(phi, "success")  # a run only the other registry has
    exported = export_text(app)

    result = import_text(other_app, exported)

    phi_plan = next(m for m in result["models"] if m["model_name"] == "microsoft/phi-2")
    assert (phi_plan["attempts_added"], phi_plan["measurements_added"]) == (2, 2)
    document_ = json.loads(export_text(other_app))
    phi_entry = next(e for e in document_["models"] if e["model_name"] == "microsoft/phi-2")
    assert [a["outcome"] for a in phi_entry["attempts"]] == ["failure", "success", "success"]  # oldest first
    # The measured metrics came with their measurement (the model had none).
    assert phi_entry["metric_sources"]["perplexity"]["measurement"] == phi_entry["measurements"][1]["started_at"]


def test_dry_run_changes_nothing_and_says_what_would_change(app, other_app):
    fill(app)
    with other_app.app_context():
        register("microsoft/phi-2", compatibility_status="incompatible")
    exported = export_text(app)
    before = export_text(other_app)

    plan = import_text(other_app, exported, dry_run=True)

    assert export_text(other_app) == before
    assert plan["dry_run"] is True
    assert plan["summary"] == {"models_added": 3, "models_updated": 1, "models_unchanged": 0,
                               "attempts_added": 3, "measurements_added": 2, "config_versions_added": 4, "autoconfigure_runs_added": 0,
                               "conflicts": 1}
    phi = next(m for m in plan["models"] if m["model_name"] == "microsoft/phi-2")
    assert {"field": "load_config", "from": None, "to": '{"attn_implementation": "eager",  "dtype": "bfloat16"}'} in phi["changes"]
    # Applying does what the dry run said.
    applied = import_text(other_app, exported, expected_digest=plan["plan_digest"])
    assert applied["summary"] == plan["summary"] and applied["dry_run"] is False


def test_a_plan_that_changed_since_the_preview_is_not_applied(app, other_app):
    fill(app)
    exported = export_text(app)
    plan = import_text(other_app, exported, dry_run=True)
    with other_app.app_context():
        register("gpt2", compatibility_notes="Registered meanwhile.")
    before = export_text(other_app)

    try:
        import_text(other_app, exported, expected_digest=plan["plan_digest"])
    except PlanChanged as changed:
        new_plan = changed.plan.result(dry_run=True)
    else:
        raise AssertionError("applied a plan nobody reviewed")

    assert export_text(other_app) == before
    assert new_plan["summary"]["models_added"] == 3
    # A different conflict choice is a different plan too.
    assert import_text(other_app, exported, dry_run=True, on_conflict="replace")["plan_digest"] != new_plan["plan_digest"]


def test_fields_the_file_leaves_out_are_left_alone(app):
    with app.app_context():
        register("gpt2")
        registry.update_model("gpt2", {"compatibility_notes": "Saved by a user."})
    import_text(app, document({"model_name": "gpt2", "perplexity": 30.5}))
    stored = model(app, "gpt2")
    assert (stored["compatibility_notes"], stored["perplexity"]) == ("Saved by a user.", 30.5)
