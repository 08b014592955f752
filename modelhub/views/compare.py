"""The Compare page: every model's scores side by side in a sortable table, and a throughput chart.

It reads the same query as the Models page (``ModelListQuerySchema``: a bad value is the same 400 page)
plus ``x``, the quality score the chart plots throughput against. With ``HX-Request`` (the filter bar,
a column header, the chart's select) only ``_compare_results.html`` is rendered.
"""

from flask import Blueprint, make_response, render_template, request, url_for
from marshmallow import EXCLUDE, ValidationError, fields, validate

from modelhub import registry
from modelhub.comparing import cell, throughput_chart
from modelhub.metric_catalogue import BY_FIELD, METRICS, SCORE_FIELDS
from modelhub.schemas import ModelListQuerySchema
from modelhub.views.filters import bad_request, filter_form_query

bp = Blueprint("compare", __name__)

PAGE_SIZE = 100


class CompareQuerySchema(ModelListQuerySchema):
    x = fields.String(
        load_default="mmlu_score", validate=validate.OneOf(SCORE_FIELDS),
        metadata={"description": "The quality score on the chart's horizontal axis."},
    )


_query_schema = CompareQuerySchema(unknown=EXCLUDE)


@bp.route("/compare")
def compare_page():
    """The Compare page; with ``HX-Request`` only the table and chart are rendered."""
    try:
        query = filter_form_query(_query_schema, PAGE_SIZE)
    except ValidationError as error:
        return bad_request(error)
    filters = {"status": query.get("status"), "q": query.get("q")}
    page = registry.list_models(**filters, sort=query["sort"], page=query["page"], per_page=query["per_page"])
    context = {
        "page": page, "query": query, "metrics": METRICS, "cell": cell, "header": lambda field: header(query, field),
        "page_url": lambda number: _url(query, page=number),
        "has_models": page.total > 0 or registry.has_models(),
        "svg": throughput_chart(query["x"], **filters), "x_metric": BY_FIELD[query["x"]].label,
        "x_choices": [m for m in METRICS if m.score],
    }
    template = "compare/_compare_results.html" if request.headers.get("HX-Request") else "compare/compare.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def header(query: dict, field: str) -> dict:
    """A column header's link: the first click sorts best-first, the next click reverses."""
    current = query["sort"]
    if current.lstrip("-") == field:
        next_sort = field if current.startswith("-") else f"-{field}"
        state = "descending" if current.startswith("-") else "ascending"
    else:
        descending = field in BY_FIELD and BY_FIELD[field].higher_is_better
        next_sort, state = (f"-{field}" if descending else field), "none"
    return {"url": _url(query, sort=next_sort, page=None), "aria_sort": state}


def _url(query: dict, **changes) -> str:
    args = {"q": query.get("q"), "status": query.get("status"), "sort": query["sort"], "x": query["x"], "page": query["page"]}
    args.update(changes)
    if args["page"] == 1:
        args["page"] = None
    if query["per_page"] != PAGE_SIZE:
        args["per_page"] = query["per_page"]
    return url_for("views.compare.compare_page", **{k: v for k, v in args.items() if v})
