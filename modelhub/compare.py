"""The Compare page: every model's scores side by side in a sortable table, and a throughput chart.

It reads the same query as the Models page (``ModelListQuerySchema``: a bad value is the same 400 page)
plus ``x``, the quality score the chart plots throughput against. With ``HX-Request`` (the filter bar,
a column header, the chart's select) only ``_compare_results.html`` is rendered.
"""

from dataclasses import dataclass

from flask import Blueprint, make_response, render_template, request, url_for
from marshmallow import EXCLUDE, ValidationError, fields, validate
from sqlalchemy import select

from modelhub import chart, display, registry
from modelhub.extensions import db
from modelhub.models import QUALITY_SCORES, ModelRegistry
from modelhub.pages import bad_request, filter_form_query
from modelhub.schemas import ModelListQuerySchema

bp = Blueprint("compare", __name__)

PAGE_SIZE = 100
MAX_POINTS = 2000  # beyond this a scatter plot is a blot; the filters narrow it down
Y_FIELD = "max_throughput_tokens_sec"
METRICS = [*display.QUALITY, *display.OPERATIONAL]
_LABELS = {m.field: m.label for m in METRICS}
SOURCE_NAMES = {"typed": "Typed by a user", "card": "From the model card", "measured": "Measured here"}


class CompareQuerySchema(ModelListQuerySchema):
    x = fields.String(
        load_default="mmlu_score", validate=validate.OneOf(QUALITY_SCORES),
        metadata={"description": "The quality score on the chart's horizontal axis."},
    )


_query_schema = CompareQuerySchema(unknown=EXCLUDE)


@dataclass(frozen=True)
class Cell:
    """One value of the table, with where it came from (``None`` source: the cell is empty)."""

    text: str
    source: str | None = None
    detail: str = ""

    @property
    def title(self) -> str:
        return f"{SOURCE_NAMES.get(self.source, self.source)}{' · ' + self.detail if self.detail else ''}"


@bp.route("/compare")
def compare_page():
    """The Compare page; with ``HX-Request`` only the table and chart are rendered."""
    try:
        query = _compare_query()
    except ValidationError as error:
        return bad_request(error)
    filters = {"status": query.get("status"), "q": query.get("q")}
    page = registry.list_models(**filters, sort=query["sort"], page=query["page"], per_page=query["per_page"])
    context = {
        "page": page, "query": query, "metrics": METRICS, "cell": cell, "header": lambda field: header(query, field),
        "page_url": lambda number: _url(query, page=number),
        "has_models": page.total > 0 or registry.list_models(per_page=1).total > 0,
        "svg": throughput_chart(query["x"], **filters), "x_metric": _LABELS[query["x"]],
        "x_choices": [m for m in display.QUALITY if m.field in QUALITY_SCORES],
    }
    template = "compare/_compare_results.html" if request.headers.get("HX-Request") else "compare/compare.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


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


def header(query: dict, field: str) -> dict:
    """A column header's link: the first click sorts best-first, the next click reverses."""
    current = query["sort"]
    if current.lstrip("-") == field:
        next_sort = field if current.startswith("-") else f"-{field}"
        state = "descending" if current.startswith("-") else "ascending"
    else:
        descending = field in QUALITY_SCORES or field == Y_FIELD
        next_sort, state = (f"-{field}" if descending else field), "none"
    return {"url": _url(query, sort=next_sort, page=None), "aria_sort": state}


def throughput_chart(x_field: str, *, status=None, q=None):
    """The throughput-against-quality SVG for the models that have both values, or None if none has."""
    models = _plottable(x_field, status=status, q=q)
    if not models:
        return None
    x_label = _LABELS[x_field]
    points = [
        chart.Point(
            x=getattr(m, x_field), y=m.max_throughput_tokens_sec, label=m.model_name.rsplit("/", 1)[-1],
            status=m.compatibility_status, title=_point_title(m, x_field, x_label),
        )
        for m in models
    ]
    return chart.scatter(
        points, x_label=f"{x_label} score", y_label="Max throughput (tokens/s)",
        title=f"Max throughput against {x_label} for {len(points)} model{'s' if len(points) != 1 else ''}",
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


def _plottable(x_field: str, *, status=None, q=None) -> list[ModelRegistry]:
    column = getattr(ModelRegistry, x_field)
    query = select(ModelRegistry).where(column.is_not(None), ModelRegistry.max_throughput_tokens_sec.is_not(None))
    if status:
        query = query.where(ModelRegistry.compatibility_status.in_(status))
    if q:
        query = query.where(ModelRegistry.model_name.icontains(q, autoescape=True))
    query = query.order_by(ModelRegistry.max_throughput_tokens_sec.desc(), ModelRegistry.model_name).limit(MAX_POINTS)
    return list(db.session.scalars(query))


def _compare_query() -> dict:
    return filter_form_query(_query_schema, PAGE_SIZE)


def _url(query: dict, **changes) -> str:
    args = {"q": query.get("q"), "status": query.get("status"), "sort": query["sort"], "x": query["x"], "page": query["page"]}
    args.update(changes)
    if args["page"] == 1:
        args["page"] = None
    if query["per_page"] != PAGE_SIZE:
        args["per_page"] = query["per_page"]
    return url_for("compare.compare_page", **{k: v for k, v in args.items() if v})
