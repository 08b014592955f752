"""The Compare page: every model's scores side by side in a sortable table, and a throughput chart.

It reads the same query as the Models page (``ModelListQuerySchema``: a bad value is the same 400 page)
plus ``x``, the quality score the chart plots throughput against. With ``HX-Request`` (the filter bar,
a column header, the chart's select) only ``_compare_results.html`` is rendered.
"""

from dataclasses import dataclass

from flask import Blueprint, make_response, render_template, request, url_for
from marshmallow import EXCLUDE, ValidationError, fields, validate

from modelhub import registry
from modelhub.comparing import cell, throughput_chart
from modelhub.metric_catalogue import BY_FIELD, METRICS, SCORE_FIELDS
from modelhub.schemas import ModelListQuerySchema
from modelhub.views.filters import bad_request, filter_form_query

bp = Blueprint("compare", __name__)

PAGE_SIZE = 100
# The loaded query's keys that are not filters; every other key (the Models page's filters, whatever the
# schema holds) narrows the table and the chart alike, and stays in the header, pager and refresh links.
# "view" is the Models page's Cards/Table switch, should it ever be part of the schema.
NOT_FILTERS = frozenset({"sort", "page", "per_page", "x", "view"})


class CompareQuerySchema(ModelListQuerySchema):
    x = fields.String(
        load_default="mmlu_score", validate=validate.OneOf(SCORE_FIELDS),
        metadata={"description": "The quality score on the chart's horizontal axis."},
    )


_query_schema = CompareQuerySchema(unknown=EXCLUDE)


@dataclass(frozen=True)
class Column:
    field: str
    label: str
    kind: str  # "text" (left-aligned) or "num"
    width: str  # its <col> class (compare.css): the sticky header copy and the table share the widths
    hint: str = ""


COLUMNS = (
    Column("model_name", "Model", "text", "model"),
    Column("compatibility_status", "Status", "text", "status"),
    *(Column(metric.field, metric.label, "num", "num", metric.hint) for metric in METRICS),
    Column("quantization", "Quantization", "text", "quant"),
)


@bp.route("/compare")
def compare_page():
    """The Compare page; with ``HX-Request`` only the table and chart are rendered."""
    try:
        query = filter_form_query(_query_schema, PAGE_SIZE)
    except ValidationError as error:
        return bad_request(error)
    filters = filters_of(query)
    page = registry.list_models(**filters, sort=query["sort"], page=query["page"], per_page=query["per_page"])
    context = {
        "page": page, "query": query, "metrics": METRICS, "cell": cell, "header": lambda field: header(query, field),
        "page_url": lambda number: _url(query, page=number), "self_url": _url(query),
        "has_models": page.total > 0 or registry.has_models(),
        "chart": throughput_chart(query["x"], _details_url, **filters), "x_metric": BY_FIELD[query["x"]].label,
        "x_choices": [m for m in METRICS if m.score], "columns": COLUMNS,
    }
    template = "compare/_compare_results.html" if request.headers.get("HX-Request") else "compare/compare.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def filters_of(query: dict) -> dict:
    """The filters in a loaded query, as ``list_models`` and the chart take them."""
    return {key: value for key, value in query.items() if key not in NOT_FILTERS}


def header(query: dict, field: str) -> dict:
    """A column header's link: the first click sorts best-first, the next click reverses. ``aria_sort``
    is its state; ``order`` says in words which rows come first now (empty: not sorted by it), ``action``
    what a click does (the link's title)."""
    current = query["sort"]
    words = _order_words(field)
    if current.lstrip("-") == field:
        next_sort = field if current.startswith("-") else f"-{field}"
        state = "descending" if current.startswith("-") else "ascending"
        order = words[state == "descending"]
        action = f"Sorted {order}: click for {words[state != 'descending']}"
    else:
        descending = field in BY_FIELD and BY_FIELD[field].higher_is_better
        next_sort, state, order = (f"-{field}" if descending else field), "none", ""
        action = f"Sort {words[descending]}"
    return {"url": _url(query, sort=next_sort, page=None), "aria_sort": state, "order": order, "action": action}


def _order_words(field: str) -> tuple[str, str]:
    """(ascending, descending) in the column's own words."""
    if field in BY_FIELD:
        return "lowest first", "highest first"
    return "A–Z", "Z–A"


def _details_url(model_name: str) -> str:
    return url_for("views.models.model_details", model_name=model_name)


def _url(query: dict, **changes) -> str:
    args = {**filters_of(query), "sort": query["sort"], "x": query["x"], "page": query["page"]}
    args.update(changes)
    if args["page"] == 1:
        args["page"] = None
    if query["per_page"] != PAGE_SIZE:
        args["per_page"] = query["per_page"]
    return url_for("views.compare.compare_page", **{k: v for k, v in args.items() if v})
