"""Published quality scores, read from a model's own files (its card), and imported into empty fields.

Two places are read, in this order (for a field found in both, README.md wins unless .eval_results
holds a better-suited metric, e.g. TruthfulQA mc2 rather than mc1):

- ``README.md``'s YAML front matter (between ``---`` lines), ``model-index``::

    model-index:
      - name: my-model
        results:
          - dataset: {name: MMLU (5-Shot), type: cais/mmlu}
            metrics: [{type: acc, value: 0.72}]
            source: {url: https://..., name: Open LLM Leaderboard}

- ``.eval_results/*.yaml``, one evaluation per file (Hugging Face's newer format). Accepted: a list of
  entries or one entry (a mapping), or ``{"results": [...]}``; each entry has ``dataset`` (a mapping with
  ``id``/``type``/``name``/``task_id``, or a string), ``value``, and optionally ``metric`` (mapping with
  ``type``/``name``, or a string) and ``source`` (``{url, name}``) or ``url``::

    - dataset: {id: Idavidrein/gpqa, task_id: gpqa_diamond}
      value: 63.3
      source: {url: https://huggingface.co/org/model, name: Model Card}

Values of 1.0 or less are fractions (x100); anything outside 0-100 after that is refused. Nothing here
raises on a bad file: every problem is a message in ``CardScores.problems``.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelhub import registry
from modelhub.exceptions import PreconditionFailed, WriteContention
from modelhub.metric_catalogue import SCORE_FIELDS

README = "README.md"
EVAL_RESULTS = ".eval_results"
MAX_CARD_BYTES = 2 * 1024 * 1024  # a card is text; a bigger "README" is not worth parsing

# Canonical dataset names (last path segment, lowercase, letters and digits only) -> field.
# Exact names only: MMLU-Pro, CMMLU, HumanEval+ are other benchmarks and must not land in these fields.
DATASETS = {
    "mmlu": "mmlu_score", "hendryckstest": "mmlu_score",
    "gpqa": "gpqa_score", "gpqadiamond": "gpqa_score", "gpqamain": "gpqa_score",
    "hellaswag": "hellaswag_score",
    "humaneval": "humaneval_score", "openaihumaneval": "humaneval_score",
    "mbpp": "mbpp_score",
    "math": "math_score", "competitionmath": "math_score", "hendrycksmath": "math_score",
    "truthfulqa": "truthfulqa_score", "truthfulqamc": "truthfulqa_score", "truthfulqamc2": "truthfulqa_score",
}
_PASS_AT = re.compile(r"pass@(\d+)")


@dataclass(frozen=True)
class CardScore:
    field: str
    value: float
    source: dict  # {"source": "card", "card": ..., "dataset": ..., "metric": ..., "link": ...}
    rank: int = 0  # lower is a better-suited metric for the field


@dataclass
class CardScores:
    scores: dict[str, CardScore] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def offer(self, score: CardScore) -> None:
        current = self.scores.get(score.field)
        if current is None or score.rank < current.rank:
            self.scores[score.field] = score


def read_card_scores(directory: Path) -> CardScores:
    """Every quality score published in ``directory``'s README.md and .eval_results/*.yaml."""
    result = CardScores()
    directory = Path(directory)
    readme = directory / README
    if readme.is_file():
        front = _front_matter(_read_yaml(readme, result, front_matter=True), README, result)
        for model_entry in _list(front.get("model-index"), f"{README}: model-index", result):
            if isinstance(model_entry, dict):
                for entry in _list(model_entry.get("results"), f"{README}: model-index results", result):
                    _model_index_result(entry, README, result)
    eval_dir = directory / EVAL_RESULTS
    if eval_dir.is_dir():
        for path in sorted(p for p in eval_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
            card = f"{EVAL_RESULTS}/{path.name}"
            data = _read_yaml(path, result, card=card)
            if isinstance(data, dict) and "results" in data:
                data = data["results"]
            for entry in data if isinstance(data, list) else [data] if data is not None else []:
                _eval_result(entry, card, result)
    return result


def dataset_field(*names) -> str | None:
    """``"cais/mmlu"`` or ``"MMLU (5-Shot)"`` -> ``"mmlu_score"``; None for benchmarks we do not track."""
    for name in names:
        if isinstance(name, str) and name.strip():
            bare = re.sub(r"\(.*?\)", "", name).strip().rsplit("/", 1)[-1]
            key = re.sub(r"[^a-z0-9]", "", bare.lower())
            if key in DATASETS:
                return DATASETS[key]
    return None


def _read_yaml(path: Path, result: CardScores, *, front_matter: bool = False, card: str | None = None):
    card = card or path.name
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            result.problems.append(f"{card}: larger than {MAX_CARD_BYTES // (1024 * 1024)} MiB; not read.")
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        result.problems.append(f"{card}: could not be read ({error.strerror or error}).")
        return None
    if front_matter:
        match = re.match(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*$", text, re.S | re.M)
        if not match:
            return None  # a card without front matter publishes no results
        text = match.group(1)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1 + (1 if front_matter else 0)}" if where else ""
        result.problems.append(f"{card}: invalid YAML{at}: {getattr(error, 'problem', None) or error}.")
        return None


def _front_matter(data, card: str, result: CardScores) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        result.problems.append(f"{card}: the front matter is not a mapping of keys; ignored.")
        return {}
    return data


def _list(value, where: str, result: CardScores) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        result.problems.append(f"{where}: expected a list, found {type(value).__name__}; ignored.")
        return []
    return value


def _model_index_result(entry, card: str, result: CardScores) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), dict):
        result.problems.append(f"{card}: a model-index result without a dataset mapping; ignored.")
        return
    dataset = entry["dataset"]
    target = dataset_field(dataset.get("type"), dataset.get("name"))
    if target is None:
        return
    link = _link(entry.get("source"))
    for metric in _list(entry.get("metrics"), f"{card}: metrics of {_label(dataset)}", result):
        if isinstance(metric, dict):
            _offer(result, target, metric.get("value"), card, _label(dataset), _metric_label(metric), link)


def _eval_result(entry, card: str, result: CardScores) -> None:
    if not isinstance(entry, dict):
        result.problems.append(f"{card}: an entry is not a mapping; ignored.")
        return
    dataset = entry.get("dataset")
    dataset = {"id": dataset} if isinstance(dataset, str) else dataset
    if not isinstance(dataset, dict):
        result.problems.append(f"{card}: an entry has no dataset; ignored.")
        return
    target = dataset_field(dataset.get("id"), dataset.get("type"), dataset.get("task_id"), dataset.get("name"))
    if target is None:
        return
    metric = entry.get("metric")
    metric = {"type": metric} if isinstance(metric, str) else metric if isinstance(metric, dict) else {}
    link = _link(entry.get("source")) or (entry.get("url") if isinstance(entry.get("url"), str) else None)
    _offer(result, target, entry.get("value"), card, _label(dataset), _metric_label(metric), link)


def _offer(result, target, raw, card, dataset, metric, link) -> None:
    rank = _metric_rank(target, metric)
    if rank is None:
        return  # e.g. HumanEval pass@10: not the number the field means
    value = _number(raw)
    if value is None:
        result.problems.append(f"{card}: {dataset} {metric or 'value'} is not a number ({raw!r}); ignored.")
        return
    scaled = round(value * 100 if value <= 1.0 else value, 2)
    if not 0 <= scaled <= 100:
        result.problems.append(f"{card}: {dataset} {metric or 'value'} = {raw!r} is outside 0-100; ignored.")
        return
    source = {"source": "card", "card": card, "dataset": dataset, "metric": metric}
    if link:
        source["link"] = link
    result.offer(CardScore(target, scaled, source, rank))


def _metric_rank(target: str, metric: str | None) -> int | None:
    text = (metric or "").lower()
    if target in ("humaneval_score", "mbpp_score"):
        match = _PASS_AT.search(text.replace(" ", ""))
        if match:
            return 0 if match.group(1) == "1" else None
        return 1
    if target == "truthfulqa_score":
        return 0 if "mc2" in text else 2 if "mc1" in text else 1
    return 0


def _number(raw) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw) if raw == raw and abs(raw) != float("inf") else None
    if isinstance(raw, str):
        try:
            number = float(raw.strip().rstrip("%"))
        except ValueError:
            return None
        return _number(number)
    return None


def _label(dataset: dict) -> str:
    for key in ("type", "id", "name", "task_id"):
        if isinstance(dataset.get(key), str) and dataset[key].strip():
            return dataset[key].strip()
    return "?"


def _metric_label(metric: dict) -> str | None:
    for key in ("type", "name"):
        if isinstance(metric.get(key), str) and metric[key].strip():
            return metric[key].strip()
    return None


def _link(source) -> str | None:
    if isinstance(source, dict) and isinstance(source.get("url"), str):
        return source["url"]
    return None


@dataclass
class ImportResult:
    imported: dict[str, float] = field(default_factory=dict)
    sources: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # found on the card, but the field already had a value
    problems: list[str] = field(default_factory=list)
    model: object = None  # the ModelRegistry row after the import


def model_directories(model) -> list[Path]:
    """Where the model's files are: its copies still on disk, then its cache_path (each once)."""
    paths = [copy.path for copy in registry.copies(model) if not copy.missing]
    return [Path(p) for p in dict.fromkeys([*paths, model.cache_path]) if p]


def import_card_scores(model, *, _attempt: int = 1) -> ImportResult:
    """Fill the model's empty quality scores from its card; a value already there (typed or measured)
    is never overwritten. Needs an app context; writes through the registry, with provenance."""
    found = CardScores()
    directories = model_directories(model)
    for directory in directories:
        scores = read_card_scores(directory)
        found.problems += [f"{directory}/{p}" if len(directories) > 1 else p for p in scores.problems]
        for score in scores.scores.values():
            if score.field not in found.scores:  # the first copy that publishes a field wins
                found.scores[score.field] = score
    result = ImportResult(problems=found.problems, model=model)
    if not directories:
        result.problems.append("The model has no directory on disk to read a card from.")
    for name in SCORE_FIELDS:
        score = found.scores.get(name)
        if score is None:
            continue
        if getattr(model, name) is not None:
            result.skipped.append(name)
        else:
            result.imported[name] = score.value
            result.sources[name] = score.source
    if result.imported:
        changes = {**result.imported, "metric_sources": {**(model.metric_sources or {}), **result.sources}}
        # Guarded by the version we read: a value typed meanwhile is never overwritten (we start over).
        try:
            result.model = registry.update_model(model.model_name, changes, if_match=frozenset({model.etag}))
        except PreconditionFailed:
            if _attempt >= 3:
                raise WriteContention(f"Model {model.model_name!r} keeps changing; import its card scores again shortly.") from None
            return import_card_scores(registry.get_model(model.model_name), _attempt=_attempt + 1)
    return result


assert set(DATASETS.values()) == set(SCORE_FIELDS)
