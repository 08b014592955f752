"""The benchmark metrics a model carries, written once.

Everything that lists them is built from ``METRICS``, in its order: the API's fields and their bounds
(``modelhub.schemas``), the export document (``modelhub.exchange``), the cards' badges, the details
modal and the sort menu (``modelhub.display``), and Compare's columns and chart. The registry table
declares one column per metric (``modelhub.models``; the table is a contract with migrations), and
tests/test_metric_catalogue.py checks that those columns are exactly these.

Every metric is a number from 0, or null (not known). Quantization, a free text beside them, is not a
metric.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    field: str  # the column, the API's and the export's key
    label: str  # on the pages: the field's label, Compare's column header, the sort menu's entry
    hint: str  # on the pages: the modal's one-line hint, the tooltip of Compare's header
    description: str  # in the OpenAPI document (a score's "(0-100)" is added from ``maximum``)
    badge: str  # the model card's badge, with ``{value}``
    section: str  # the details modal's group: "quality" or "operational"
    score: bool = False  # a benchmark score from 0 to 100: model cards publish them, Compare plots them
    higher_is_better: bool = True  # sorts and Compare's headers start best-first
    sort_label: str = ""  # the sort menu's entry when it is not ``label``

    @property
    def maximum(self) -> int | None:
        """The largest value accepted: 100 for a score, no maximum otherwise."""
        return 100 if self.score else None


def _score(field: str, label: str, hint: str, description: str) -> Metric:
    return Metric(field, label, hint, description, f"{label} {{value}}", "quality", score=True)


METRICS = (
    _score("mmlu_score", "MMLU", "General knowledge", "MMLU: general knowledge"),
    _score("gpqa_score", "GPQA", "Graduate-level reasoning", "GPQA: graduate-level reasoning"),
    _score("hellaswag_score", "HellaSwag", "Common sense reasoning", "HellaSwag: common sense reasoning"),
    _score("humaneval_score", "HumanEval", "Python coding ability", "HumanEval: Python coding ability"),
    _score("mbpp_score", "MBPP", "More Python coding", "MBPP: more Python coding"),
    _score("math_score", "MATH", "Mathematical reasoning", "MATH: mathematical reasoning"),
    _score("truthfulqa_score", "TruthfulQA", "Honesty/hallucination resistance",
           "TruthfulQA: honesty/hallucination resistance"),
    Metric("perplexity", "Perplexity", "Fluency (lower is better, no max)",
           "Perplexity: fluency, lower is better, no maximum", "PPL {value}", "quality",
           higher_is_better=False, sort_label="Perplexity (lowest)"),
    Metric("max_throughput_tokens_sec", "Max Throughput", "Tokens per second", "Max throughput in tokens per second",
           "{value} tok/s", "operational", sort_label="Throughput (highest)"),
    Metric("avg_latency_ms", "Avg Latency TTFT", "Time to first token (milliseconds)",
           "Average time to first token in milliseconds", "TTFT {value} ms", "operational",
           higher_is_better=False, sort_label="Latency (lowest)"),
)
BY_FIELD = {metric.field: metric for metric in METRICS}
METRIC_FIELDS = tuple(BY_FIELD)
SCORE_FIELDS = tuple(metric.field for metric in METRICS if metric.score)
