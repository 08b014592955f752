"""Recording scan findings in the registry: merge copies, keep user edits, missing and returning models."""

from pathlib import Path

import pytest

from modelhub import registry
from modelhub.discovery.sync import apply_scan
from modelhub.discovery.types import FoundModel, Location, ScanReport
from modelhub.extensions import db
from modelhub.models import ModelCopy

HUB = Path("/cache/hub")
DISK2 = Path("/mnt/disk2/models")


def found(hf_path, root, location="primary", **fields) -> FoundModel:
    return FoundModel(hf_path=hf_path, location=location, path=f"{root}/{hf_path.replace('/', '--')}", **fields)


def report(*models, roots=(Location("primary", HUB), Location("secondary", DISK2))) -> ScanReport:
    return ScanReport(found=list(models), roots=list(roots))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def copies_of(name):
    model = registry.get_model(name)
    return {c.path: c for c in db.session.query(ModelCopy).filter_by(model_id=model.id)}


def test_new_models_are_registered_with_their_copy(ctx):
    summary = apply_scan(report(found("microsoft/phi-2", HUB, size_bytes=5_000_000_000, weight_format="safetensors",
                                      architecture="PhiForCausalLM", model_type="phi", revision="a" * 40),
                                found("TheBloke/llama-GPTQ", DISK2, "secondary", quantization="GPTQ")))
    assert sorted(summary.added) == ["TheBloke/llama-GPTQ", "microsoft/phi-2"]
    phi = registry.get_model("microsoft/phi-2")
    assert (phi.hf_path, phi.cache_location, phi.cache_path) == ("microsoft/phi-2", "primary", f"{HUB}/microsoft--phi-2")
    (copy,) = copies_of("microsoft/phi-2").values()
    assert (copy.size_bytes, copy.architecture, copy.revision) == (5_000_000_000, "PhiForCausalLM", "a" * 40)
    assert registry.get_model("TheBloke/llama-GPTQ").quantization == "GPTQ"


def test_the_same_model_in_two_locations_is_one_entry_with_two_copies(ctx):
    summary = apply_scan(report(found("gpt2", HUB), found("gpt2", DISK2, "secondary")))
    assert summary.added == ["gpt2"]
    assert registry.list_models().total == 1
    assert {c.location for c in copies_of("gpt2").values()} == {"primary", "secondary"}


def test_a_rescan_never_overwrites_what_the_user_edited(ctx):
    apply_scan(report(found("gpt2", HUB, quantization="GPTQ")))
    registry.update_model("gpt2", {"compatibility_status": "degraded", "compatibility_notes": "mine",
                                   "load_config": '{"dtype": "bfloat16"}', "mmlu_score": 30.5, "quantization": "None"})
    apply_scan(report(found("gpt2", HUB, quantization="AWQ", size_bytes=7)))
    model = registry.get_model("gpt2")
    assert (model.compatibility_status, model.compatibility_notes, model.load_config, model.mmlu_score, model.quantization) == (
        "degraded", "mine", '{"dtype": "bfloat16"}', 30.5, "None")
    assert copies_of("gpt2")[f"{HUB}/gpt2"].size_bytes == 7  # what the scan measures is refreshed


def test_a_model_whose_files_are_gone_is_marked_missing_then_unmarked_when_back(ctx):
    apply_scan(report(found("gpt2", HUB), found("gpt2", DISK2, "secondary"), found("other/model", HUB)))

    first = apply_scan(report(found("gpt2", DISK2, "secondary"), found("other/model", HUB)))
    assert first.went_missing == []  # one copy is left
    assert copies_of("gpt2")[f"{HUB}/gpt2"].missing
    assert registry.get_model("gpt2").cache_path == f"{DISK2}/gpt2"  # loads from the copy that is there

    second = apply_scan(report(found("other/model", HUB)))
    assert second.went_missing == ["gpt2"]
    assert registry.get_model("gpt2").missing  # kept, not deleted

    back = apply_scan(report(found("gpt2", HUB), found("other/model", HUB)))
    assert back.came_back == ["gpt2"]
    assert not registry.get_model("gpt2").missing
    assert not copies_of("gpt2")[f"{HUB}/gpt2"].missing


def test_copies_outside_the_scanned_roots_are_left_alone(ctx):
    apply_scan(report(found("gpt2", HUB)))
    apply_scan(report(roots=[Location("secondary", DISK2)]))  # the hub cache was not scanned this time
    assert not registry.get_model("gpt2").missing


def test_a_name_that_cannot_be_a_model_name_is_a_problem_not_an_entry(ctx):
    summary = apply_scan(report(found("has spaces/in name", DISK2, "secondary")))
    assert summary.added == []
    assert "not a usable model name" in summary.problems[0].message
    assert registry.list_models().total == 0
