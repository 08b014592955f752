"""How registry fields are presented on the pages: labels, the modal's one-line hints, badges, sorts.

Declared once here so the model cards, the details modal and the filter bar stay in step.
"""

from dataclasses import dataclass

from modelhub.models import COMPATIBILITY_STATUSES


@dataclass(frozen=True)
class Metric:
    field: str
    label: str
    hint: str
    badge: str  # format of the card badge, with {value}
    maximum: float | None = None  # 100 for the quality scores; None: no maximum

    def badge_text(self, value) -> str:
        return self.badge.format(value=_number(value))


QUALITY = [
    Metric("mmlu_score", "MMLU", "General knowledge", "MMLU {value}", 100),
    Metric("gpqa_score", "GPQA", "Graduate-level reasoning", "GPQA {value}", 100),
    Metric("hellaswag_score", "HellaSwag", "Common sense reasoning", "HellaSwag {value}", 100),
    Metric("humaneval_score", "HumanEval", "Python coding ability", "HumanEval {value}", 100),
    Metric("mbpp_score", "MBPP", "More Python coding", "MBPP {value}", 100),
    Metric("math_score", "MATH", "Mathematical reasoning", "MATH {value}", 100),
    Metric("truthfulqa_score", "TruthfulQA", "Honesty/hallucination resistance", "TruthfulQA {value}", 100),
    Metric("perplexity", "Perplexity", "Fluency (lower is better, no max)", "PPL {value}"),
]
OPERATIONAL = [
    Metric("max_throughput_tokens_sec", "Max Throughput", "Tokens per second", "{value} tok/s"),
    Metric("avg_latency_ms", "Avg Latency TTFT", "Time to first token (milliseconds)", "TTFT {value} ms"),
]
QUANTIZATION_HINT = 'Type (e.g., "GGUF Q4_K_M", "None")'

STATUS_HINTS = {
    "unknown": "Model never tested",
    "compatible": "Model loads successfully",
    "incompatible": "Model fails to load",
    "degraded": "Intermittent failures",
    "testing": "Currently being tested",
}
assert tuple(STATUS_HINTS) == COMPATIBILITY_STATUSES

LOAD_CONFIG_PLACEHOLDER = """{
    "torch_dtype": "bfloat16",
    "attn_implementation": "eager",
    "device_map": "auto",
    "low_cpu_mem_usage": true
}"""

# (value of ?sort=, label) for the filter bar: better-first for every score.
SORTS = [
    ("model_name", "Name"),
    ("compatibility_status", "Status"),
    ("-updated_at", "Recently changed"),
    *[(f"-{m.field}", m.label) for m in QUALITY if m.field != "perplexity"],
    ("perplexity", "Perplexity (lowest)"),
    ("-max_throughput_tokens_sec", "Throughput (highest)"),
    ("avg_latency_ms", "Latency (lowest)"),
]


def badges(model) -> list[str]:
    """The benchmark badges of a model card: one per metric that is set, then the quantization."""
    texts = [m.badge_text(getattr(model, m.field)) for m in QUALITY + OPERATIONAL if getattr(model, m.field) is not None]
    if model.quantization:
        texts.append(model.quantization)
    return texts


def _number(value: float) -> str:
    """72.5 -> "72.5", 38.0 -> "38", 8.1234 -> "8.12": badges are read at a glance."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
