"""How registry fields are presented on the pages: the modal's sections and hints, badges, sorts.

Declared once here (the metrics' labels and formats in modelhub.metric_catalogue) so the model cards,
the details modal and the filter bar stay in step.
"""

from modelhub.metric_catalogue import METRICS
from modelhub.models import COMPATIBILITY_STATUSES

# The details modal's two groups of metric fields.
QUALITY = [metric for metric in METRICS if metric.section == "quality"]
OPERATIONAL = [metric for metric in METRICS if metric.section == "operational"]
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

# (value of ?sort=, label) for the filter bar: better-first for every metric.
SORTS = [
    ("model_name", "Name"),
    ("compatibility_status", "Status"),
    ("-updated_at", "Recently changed"),
    *[(f"-{m.field}" if m.higher_is_better else m.field, m.sort_label or m.label) for m in METRICS],
]


def badges(model) -> list[str]:
    """The benchmark badges of a model card: one per metric that is set, then the quantization."""
    values = [(m, getattr(model, m.field)) for m in METRICS]
    texts = [m.badge.format(value=_number(value)) for m, value in values if value is not None]
    if model.quantization:
        texts.append(model.quantization)
    return texts


def _number(value: float) -> str:
    """72.5 -> "72.5", 38.0 -> "38", 8.1234 -> "8.12": badges are read at a glance."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
