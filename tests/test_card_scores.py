"""Importing published quality scores from a model's own files: README.md model-index and .eval_results/."""

import json
from pathlib import Path

import pytest

from modelhub import registry
from modelhub.card_scores import import_card_scores, read_card_scores

LLAMA_LIKE_CARD = """---
license: llama2
language:
- en
tags:
- text-generation
model-index:
- name: example/llama-7b
  results:
  - task:
      type: text-generation
      name: Text Generation
    dataset:
      name: MMLU (5-Shot)
      type: cais/mmlu
      config: all
      split: test
      args:
        num_few_shot: 5
    metrics:
    - type: acc
      value: 0.72
      name: accuracy
    source:
      url: https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard
      name: Open LLM Leaderboard
  - task:
      type: text-generation
    dataset:
      name: HellaSwag (10-Shot)
      type: hellaswag
      split: validation
    metrics:
    - type: acc_norm
      value: 80.1
  - task:
      type: text-generation
    dataset:
      name: TruthfulQA (0-shot)
      type: truthful_qa
    metrics:
    - type: mc1
      value: 0.30
    - type: mc2
      value: 0.455
  - task:
      type: text-generation
    dataset:
      name: MMLU-PRO (5-shot)
      type: TIGER-Lab/MMLU-Pro
    metrics:
    - type: acc
      value: 40.0
  - task:
      type: text-generation
    dataset:
      name: HumanEval
      type: openai_humaneval
    metrics:
    - type: pass@10
      value: 55.0
    - type: pass@1
      value: 31.7
---

# Llama-like model

Some prose with a --- rule.

---
"""

SENTENCE_TRANSFORMERS_CARD = """---
language: en
license: apache-2.0
library_name: sentence-transformers
tags:
- sentence-transformers
- feature-extraction
- sentence-similarity
datasets:
- s2orc
- ms_marco
pipeline_tag: sentence-similarity
---

# all-MiniLM-L6-v2
"""

EVAL_RESULT = """- dataset:
    id: Idavidrein/gpqa
    task_id: gpqa_diamond
  value: 63.3
  date: '2026-02-03'
  source:
    url: https://huggingface.co/example/model
    name: Model Card
"""


def model_dir(root: Path, readme: str | None = None, eval_results: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    if readme is not None:
        (root / "README.md").write_text(readme)
    for name, text in (eval_results or {}).items():
        (root / ".eval_results").mkdir(exist_ok=True)
        (root / ".eval_results" / name).write_text(text)
    return root


def values(scores) -> dict:
    return {name: score.value for name, score in scores.scores.items()}


def test_a_real_looking_model_index_is_read_and_normalised(tmp_path):
    scores = read_card_scores(model_dir(tmp_path / "m", LLAMA_LIKE_CARD))
    assert values(scores) == {"mmlu_score": 72.0, "hellaswag_score": 80.1, "truthfulqa_score": 45.5, "humaneval_score": 31.7}
    assert scores.problems == []
    assert scores.scores["mmlu_score"].source == {
        "source": "card", "card": "README.md", "dataset": "cais/mmlu", "metric": "acc",
        "link": "https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard",
    }
    assert scores.scores["truthfulqa_score"].source["metric"] == "mc2"  # preferred over mc1, whatever the order


def test_an_eval_results_file_is_read(tmp_path):
    scores = read_card_scores(model_dir(tmp_path / "m", None, {"gpqa.yaml": EVAL_RESULT}))
    assert values(scores) == {"gpqa_score": 63.3}
    assert scores.scores["gpqa_score"].source == {
        "source": "card", "card": ".eval_results/gpqa.yaml", "dataset": "Idavidrein/gpqa", "metric": None,
        "link": "https://huggingface.co/example/model",
    }


def test_eval_results_accepts_a_single_mapping_with_a_metric(tmp_path):
    one = "dataset: {name: MBPP, type: mbpp}\nmetric: {type: pass@1}\nvalue: '0.5'\n"
    scores = read_card_scores(model_dir(tmp_path / "m", None, {"mbpp.yml": one}))
    assert values(scores) == {"mbpp_score": 50.0}


def test_a_card_without_results_gives_nothing_and_no_problem(tmp_path):
    scores = read_card_scores(model_dir(tmp_path / "m", SENTENCE_TRANSFORMERS_CARD))
    assert (scores.scores, scores.problems) == ({}, [])
    assert read_card_scores(model_dir(tmp_path / "bare")).problems == []  # no README at all


@pytest.mark.parametrize("card, expected", [
    ("---\nmodel-index: [unclosed\n---\n", "README.md: invalid YAML at line"),
    ("---\n- just\n- a list\n---\n", "README.md: the front matter is not a mapping"),
    ("---\nmodel-index: nope\n---\n", "README.md: model-index: expected a list"),
    ("---\nmodel-index:\n- results:\n  - dataset: {type: cais/mmlu}\n    metrics: [{type: acc, value: high}]\n---\n",
     "cais/mmlu acc is not a number"),
    ("---\nmodel-index:\n- results:\n  - dataset: {type: cais/mmlu}\n    metrics: [{type: acc, value: 172}]\n---\n",
     "outside 0-100"),
])
def test_a_malformed_card_is_reported_not_raised(tmp_path, card, expected):
    scores = read_card_scores(model_dir(tmp_path / "m", card))
    assert scores.scores == {}
    assert len(scores.problems) == 1 and expected in scores.problems[0], scores.problems


def test_a_malformed_eval_results_file_does_not_hide_the_readme(tmp_path):
    scores = read_card_scores(model_dir(tmp_path / "m", LLAMA_LIKE_CARD, {"bad.yaml": "dataset: [\n"}))
    assert values(scores)["mmlu_score"] == 72.0
    assert [p.split(":")[0] for p in scores.problems] == [".eval_results/bad.yaml"]


# ---- import into the registry -------------------------------------------------------------------


def register(client, directory: Path, name="example/llama-7b"):
    response = client.post("/api/models", json={"model_name": name, "cache_location": "custom", "cache_path": str(directory)})
    assert response.status_code == 201, response.json
    return name


def test_import_fills_empty_fields_and_keeps_provenance(app, client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", LLAMA_LIKE_CARD, {"gpqa.yaml": EVAL_RESULT}))
    with app.app_context():
        result = import_card_scores(registry.get_model(name))
        assert result.imported == {"mmlu_score": 72.0, "gpqa_score": 63.3, "hellaswag_score": 80.1,
                                   "humaneval_score": 31.7, "truthfulqa_score": 45.5}
        model = registry.get_model(name)
        assert (model.mmlu_score, model.math_score) == (72.0, None)
        assert model.metric_sources["mmlu_score"]["dataset"] == "cais/mmlu"
        assert model.metric_sources["gpqa_score"]["card"] == ".eval_results/gpqa.yaml"


def test_import_never_overwrites_typed_values(app, client, stored, tmp_path):
    name = register(client, model_dir(tmp_path / "m", LLAMA_LIKE_CARD))
    assert client.patch(f"/api/models/{name}/metadata", json={"mmlu_score": 30.5}).status_code == 200
    response = client.post(f"/api/models/{name}/card-scores")
    assert response.status_code == 200
    assert "mmlu_score" not in response.json["imported"]
    assert response.json["skipped"] == ["mmlu_score"]
    row = stored(name)
    assert (row["mmlu_score"], row["hellaswag_score"]) == (30.5, 80.1)
    sources = row["metric_sources"] if isinstance(row["metric_sources"], dict) else json.loads(row["metric_sources"])
    assert "mmlu_score" not in sources and sources["hellaswag_score"]["source"] == "card"


def test_import_again_keeps_the_card_values_and_their_sources(app, client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", LLAMA_LIKE_CARD))
    client.post(f"/api/models/{name}/card-scores")
    again = client.post(f"/api/models/{name}/card-scores").json
    assert again["imported"] == {} and "mmlu_score" in again["skipped"]
    assert again["model"]["metric_sources"]["mmlu_score"]["source"] == "card"


def test_the_api_end_to_end(client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", LLAMA_LIKE_CARD))
    response = client.post(f"/api/models/{name}/card-scores")
    assert response.status_code == 200
    body = response.json
    assert body["imported"]["mmlu_score"] == 72.0 and body["problems"] == []
    assert body["model"]["mmlu_score"] == 72.0
    assert body["model"]["metric_sources"]["mmlu_score"]["card"] == "README.md"
    assert response.headers["ETag"] == client.get(f"/api/models/{name}").headers["ETag"]
    assert client.get(f"/api/models/{name}").json["hellaswag_score"] == 80.1


def test_the_api_with_no_scores_and_unknown_models(client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", SENTENCE_TRANSFORMERS_CARD))
    body = client.post(f"/api/models/{name}/card-scores").json
    assert (body["imported"], body["skipped"], body["problems"]) == ({}, [], [])
    missing = client.post("/api/models/nobody/here/card-scores")
    assert missing.status_code == 404 and "nobody/here" in missing.json["message"]


def test_the_modal_button_imports_and_shows_where_values_came_from(client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", LLAMA_LIKE_CARD))
    details = client.get(f"/models/{name}/details").get_data(as_text=True)
    assert "Import scores from model card" in details and "from model card" not in details.replace("Import scores from model card", "")
    response = client.post(f"/models/{name}/card-scores", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Imported MMLU 72.0 from README.md (cais/mmlu, acc)" in html
    assert "from model card (cais/mmlu)" in html and "from model card (hellaswag)" in html
    assert 'value="72.0"' in html
    assert response.headers["ETag"] == client.get(f"/api/models/{name}").headers["ETag"]


def test_the_modal_button_says_when_the_card_has_no_scores(client, tmp_path):
    name = register(client, model_dir(tmp_path / "m", SENTENCE_TRANSFORMERS_CARD))
    html = client.post(f"/models/{name}/card-scores").get_data(as_text=True)
    assert "No scores found in the model card" in html
