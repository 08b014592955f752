"""What the Compare page shows: each value as a table cell marked with where it came from, and the
throughput-against-quality chart of the models that have both values."""

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from modelhub import chart, registry
from modelhub.metric_catalogue import BY_FIELD
from modelhub.models import ModelRegistry

MAX_POINTS = 2000  # beyond this a scatter plot is a blot; the filters narrow it down
Y_FIELD = "max_throughput_tokens_sec"
SOURCE_NAMES = {"typed": "Typed by a user", "card": "From the model card", "measured": "Measured here"}


@dataclass(frozen=True)
class Cell:
    """One value of the table, with where it came from (``None`` source: the cell is empty)."""

    text: str
    source: str | None = None
    detail: str = ""

    @property
    def title(self) -> str:
        return f"{SOURCE_NAMES.get(self.source, self.source)}{' · ' + self.detail if self.detail else ''}"


def cell(model: ModelRegistry, field: str) -> Cell:
    """A value as the table shows it, marked typed / card / measured from ``metric_sources``."""
    value = getattr(model, field)
    if value is None or value == "":
        return Cell("—")
    text = value if isinstance(value, str) else chart.format_number(value)
    entry = (model.metric_sources or {}).get(field)
    if not isinstance(entry, dict):
        return Cell(text, "typed")
    detail = " · ".join(f"{key}: {v}" for key, v in entry.items() if key != "source" and v not in (None, ""))
    return Cell(text, str(entry.get("source") or "typed"), detail)


@dataclass(frozen=True)
class ThroughputChart:
    """The same chart drawn twice: the page shows the one that fits its width (static/css/compare.css)."""

    wide: Markup
    compact: Markup
    count: int


def throughput_chart(x_field: str, details_url: Callable[[str], str], **filters) -> ThroughputChart | None:
    """The throughput-against-quality chart of the models (filtered as the table is: ``filters`` are
    ``list_models``' filters) that have both values, or None if none has. Each dot opens its model's
    details (``details_url(name)``), like a name in the table."""
    models = registry.models_with(x_field, Y_FIELD, highest_first=Y_FIELD, limit=MAX_POINTS, **filters)
    if not models:
        return None
    x_label = BY_FIELD[x_field].label
    points = [
        chart.Point(
            x=getattr(m, x_field), y=m.max_throughput_tokens_sec, label=m.model_name,
            status=m.compatibility_status, title=_point_title(m, x_field, x_label),
            href=details_url(m.model_name),
        )
        for m in models
    ]
    options = {
        "x_label": f"{x_label} score", "y_label": "Max throughput (tokens/s)",
        "title": f"Max throughput against {x_label} for {len(points)} model{'s' if len(points) != 1 else ''}",
    }
    return ThroughputChart(
        wide=chart.scatter(points, **options),
        compact=chart.scatter(points, **options, layout=chart.COMPACT, css_class="chart-compact", id_prefix="chart-compact"),
        count=len(points),
    )


def _point_title(model: ModelRegistry, x_field: str, x_label: str) -> str:
    parts = [
        model.model_name,
        f"{x_label} {chart.format_number(getattr(model, x_field))}",
        f"{chart.format_number(model.max_throughput_tokens_sec)} tok/s",
        model.compatibility_status,
    ]
    if model.quantization:
        parts.append(model.quantization)
    return " · ".join(parts)
