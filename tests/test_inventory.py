"""The inventory service and its query: each model's summary (size on disk, formats, architecture, parameters,
copies' badges, last test), the totals of a filtered list, and the sorts and filters by size, format, location,
parameters and tested state — on SQLite and PostgreSQL, with no query per model."""

from datetime import timedelta

import pytest
from sqlalchemy import event

from modelhub import display, inventory, registry
from modelhub.extensions import db
from tests import inventory_models
from tests.inventory_models import FAMILIES, SECOND_DISK


@pytest.fixture
def seeded(app):
    with app.app_context():
        inventory_models.seed(db.session.connection(), 200)
        db.session.commit()
        yield app


def names(page) -> list[str]:
    return [model.model_name for model in page.items]


def test_a_summary_adds_the_present_copies_and_names_the_primary_first(seeded):
    # model 2 (i=1): the HF cache's safetensors and LM Studio's Q4_K_M and Q8_0 files, all present.
    model = registry.get_model("Qwen/Qwen2.5-7B-Instruct")
    params = FAMILIES[1][2]
    model.cache_path = f"/home/u/.cache/huggingface/hub/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{'a1' * 20}"
    summary = inventory.summaries([model])[model.id]
    assert summary.size_bytes == params * 2 + int(params * 0.60) + int(params * 1.06)
    assert summary.size == display.human_bytes(summary.size_bytes) and summary.size.endswith(" GB")
    assert summary.formats == ["safetensors", "GGUF Q4_K_M", "GGUF Q8_0"]
    assert (summary.architecture, summary.params, summary.copies) == ("Qwen2ForCausalLM", "7.6B", 3)
    assert [(badge.library.name, badge.formats) for badge in summary.badges] == [
        ("HF cache", "safetensors"), ("LM Studio", "GGUF Q4_K_M, Q8_0")]
    assert summary.last_test is None


def test_a_missing_copy_counts_for_nothing_on_disk(seeded):
    # model 10 (i=9): GPTQ on the second disk, and an AWQ copy in text-generation-webui that went missing.
    model = registry.get_model("Qwen/Qwen2.5-7B-Instruct-ft-001")
    summary = inventory.summaries([model])[model.id]
    assert summary.size_bytes == FAMILIES[1][2] // 2 and summary.formats == ["safetensors, GPTQ"]
    assert [(badge.library.id, badge.state) for badge in summary.badges] == [
        ("text-generation-webui", "missing"), ("folder", "present")]


def test_the_last_test_is_the_latest_success_or_failure_with_its_host(seeded):
    model = registry.get_model("meta-llama/Llama-3.1-8B-Instruct")  # i=0: tested, status compatible, gpu-box
    test = inventory.summaries([model])[model.id].last_test
    assert (test.outcome, test.text, test.host) == ("success", "Loaded", "gpu-box")
    assert "AMD Radeon RX 7900 XTX" in test.environment
    assert display.relative_time(test.started_at, inventory_models.NOW) == "1 h ago"


def test_a_page_of_summaries_costs_the_same_queries_for_5_or_50_models(seeded):
    def queries_for(count):
        models = registry.list_models(per_page=count).items
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            inventory.summaries(models)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    assert queries_for(5) == queries_for(50) == 2


def test_totals_count_bytes_per_place_and_the_untested(seeded):
    models, copies, attempts = inventory_models.rows(200)
    totals = inventory.totals(200)
    present = [copy for copy in copies if not copy["missing"]]
    assert (totals.models, totals.copies) == (200, len(present))
    assert totals.size_bytes == sum(copy["size_bytes"] for copy in present)
    assert totals.untested == 200 - len(attempts)
    places = {place.name: place for place in totals.places}
    assert list(places) == ["HF cache", "LM Studio", "Ollama", "text-generation-webui /home/u/text-generation-webui/models",
                            f"Folder {SECOND_DISK}"]
    assert places[f"Folder {SECOND_DISK}"].size_bytes == sum(c["size_bytes"] for c in present if c["library"] == "folder")


def test_totals_follow_the_filters(seeded):
    page = registry.list_models(library=["ollama"], tested="untested")
    totals = inventory.totals(page.total, library=["ollama"], tested="untested")
    assert totals.untested == page.total > 0
    assert [place.name for place in totals.places] == ["Ollama"]
    assert inventory.totals(0, q="no-such-model") == inventory.Totals(0, 0, 0, 0, [])


def test_sort_by_size_largest_first_and_models_without_copies_last(seeded):
    registry.create_model({"model_name": "zz/nothing-on-disk"})
    page = registry.list_models(sort="-size_bytes", per_page=500)
    sizes = [inventory.summaries([model])[model.id].size_bytes for model in page.items[:5]]
    assert sizes == sorted(sizes, reverse=True)
    assert page.items[-1].model_name == "zz/nothing-on-disk"
    smallest = registry.list_models(sort="size_bytes", per_page=500).items
    assert smallest[-1].model_name == "zz/nothing-on-disk"  # empty values last both ways
    assert smallest[0].model_name.startswith("Qwen/Qwen2.5-0.5B")


def test_sort_by_last_tested_recent_first_then_the_untested(seeded):
    page = registry.list_models(sort="-last_tested", per_page=500)
    tested = [model for model in page.items if model.compatibility_status != "unknown"]
    assert page.items[: len(tested)] == tested  # every tested model before every untested one
    assert names(page)[:2] == ["meta-llama/Llama-3.1-8B-Instruct", "microsoft/Phi-3-mini-4k-instruct"]  # i=0, i=3


@pytest.mark.parametrize("sort", ["-parameters", "format", "library", "-size_bytes", "-last_tested", "last_tested"])
def test_every_inventory_sort_runs_and_keeps_the_name_as_tie_breaker(seeded, sort):
    items = registry.list_models(sort=sort, per_page=500).items
    assert len(items) == 200


def test_sort_by_parameters_and_by_location(seeded):
    assert registry.list_models(sort="-parameters").items[0].model_name.startswith("google/gemma-2-9b-it")
    by_library = registry.list_models(sort="library", per_page=500).items
    first = inventory.summaries(by_library[:1])[by_library[0].id]
    assert first.badges[0].library.id == "huggingface"


@pytest.mark.parametrize("format, expected", [
    (["gguf"], {1, 2, 3}), (["GGUF Q8_0"], {1, 2}), (["gptq"], {4}), (["AWQ"], {4}), (["safetensors"], {0, 1, 4}),
])
def test_filter_by_format_or_quantization(seeded, format, expected):
    page = registry.list_models(format=format, per_page=500)
    assert page.total > 0
    assert {(model.id - 1) % 5 for model in page.items} == expected
    if format == ["GGUF Q8_0"]:
        assert all((model.id - 1) % 2 == 1 for model in page.items)  # only odd ones have a second quantization
    if format == ["AWQ"]:
        assert all((model.id - 1) % 4 != 1 for model in page.items)  # a missing copy does not count


def test_filter_by_location_and_tested_state_combine_with_status_and_search(seeded):
    lm = registry.list_models(library=["lmstudio"], per_page=500)
    assert lm.total == 80 and {(model.id - 1) % 5 for model in lm.items} == {1, 2}
    both = registry.list_models(library=["ollama", "folder"], per_page=500)
    assert both.total == 80
    tested = registry.list_models(tested="tested", per_page=500)
    untested = registry.list_models(tested="untested", per_page=500)
    assert tested.total + untested.total == 200 and tested.total == 67
    assert all(model.compatibility_status == "unknown" for model in untested.items)
    narrow = registry.list_models(q="qwen", library=["huggingface"], tested="tested", status=["degraded"], per_page=500)
    assert narrow.total > 0 and all("Qwen" in model.model_name and model.compatibility_status == "degraded"
                                    for model in narrow.items)


def test_an_interrupted_load_is_not_a_test(seeded):
    from modelhub.models import LoadAttempt

    model = registry.get_model("Qwen/Qwen2.5-7B-Instruct")
    db.session.add(LoadAttempt(model_id=model.id, outcome="interrupted", previous_status="unknown",
                               started_at=inventory_models.NOW - timedelta(minutes=5)))
    db.session.commit()
    assert model.model_name in names(registry.list_models(tested="untested", per_page=500))
    assert inventory.summaries([model])[model.id].last_test is None


def test_format_choices_list_what_is_on_disk(seeded):
    assert inventory.format_choices() == [
        ("gguf", "GGUF (any)"), ("safetensors", "safetensors"), ("AWQ", "AWQ"), ("GGUF Q4_K_M", "GGUF Q4_K_M"),
        ("GGUF Q8_0", "GGUF Q8_0"), ("GPTQ", "GPTQ")]


@pytest.mark.parametrize("count, text", [(None, ""), (0, "0 B"), (999, "999 B"), (4_100_000_000, "4.1 GB"),
                                         (12_345_678_901, "12.3 GB"), (140_000_000_000, "140 GB"),
                                         (1_500_000_000_000, "1.5 TB")])
def test_sizes_read_as_people_write_them(count, text):
    assert display.human_bytes(count) == text


@pytest.mark.parametrize("ago, text", [(timedelta(seconds=20), "just now"), (timedelta(minutes=5), "5 min ago"),
                                       (timedelta(hours=3), "3 h ago"), (timedelta(days=2), "2 d ago"),
                                       (timedelta(days=100), "3 mo ago"), (timedelta(days=800), "2 y ago")])
def test_relative_times(ago, text):
    assert display.relative_time(inventory_models.NOW - ago, inventory_models.NOW) == text
    assert display.relative_time((inventory_models.NOW - ago).replace(tzinfo=None), inventory_models.NOW) == text


def test_every_sort_label_says_its_direction():
    for value, label in display.SORTS:
        assert label.endswith(")") and "(" in label, (value, label)
    sorts = dict(display.SORTS)
    assert sorts["-size_bytes"] == "Size (largest first)" and sorts["-mmlu_score"] == "MMLU (highest first)"
    assert sorts["perplexity"] == "Perplexity (lowest first)" and sorts["-last_tested"] == "Last tested (recent first)"
