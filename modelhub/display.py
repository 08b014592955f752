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


def here_mark(model, here) -> tuple[str, str] | None:
    """The card's mark for this host, as (text, status class), when what the card shows is not what this
    host knows: its own status differs from the registry's, it has only results from before its
    environment changed, or the status was learned on other hosts only. None while a load runs, or
    when there is nothing to tell (``here`` None: not looked up)."""
    if here is None or model.compatibility_status == "testing":
        return None
    if here.status is not None:
        return None if here.status == model.compatibility_status else (f"here: {here.status}", here.status)
    if here.stale:
        return "here: needs retest", "unknown"
    if here.elsewhere:
        return "here: untested", "unknown"
    return None


def here_title(text: str) -> str:
    """The hover text of the card's mark."""
    if text == "here: needs retest":
        return "This host's results are from before its libraries or driver changed: load it again here"
    if text == "here: untested":
        return "Learned on other hosts: not loaded on this host yet"
    return "Its status on this host (the badge is the registry's, from every host)"
