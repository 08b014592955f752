"""The filter bar shared by Models and Compare: its arguments read from the request, and the 400 page
for a page address holding an invalid one."""

from urllib.parse import urlencode

from flask import render_template, request
from marshmallow import ValidationError, fields

from modelhub.messages import flatten_messages

# How the filter bar names its controls, for the 400 page: a bookmarked address is fixed in the menus.
CONTROL_LABELS = {"q": "Search", "status": "Status", "format": "Format", "library": "Location", "tested": "Tested",
                  "sort": "Sort by", "x": "Chart score", "view": "View", "page": "Page", "per_page": "Models per page"}
ONE_OF = "Must be one of:"


def filter_form_query(schema, per_page: int) -> dict:
    """The request's filter-form arguments loaded with ``schema``. An empty field of the form means
    "no filter", not "filter on nothing"; the schema's list fields (status, format, library) take every value
    given, the others the first."""
    raw = {key: values for key, values in request.args.lists() if any(values)}
    for key, values in raw.items():
        raw[key] = [v for v in values if v] if isinstance(schema.fields.get(key), fields.List) else values[0]
    raw.setdefault("per_page", per_page)
    return schema.load(raw)


def bad_request(error: ValidationError):
    """The 400 page for a page address holding an invalid filter: one short line per bad control (a
    choice that is not in its menu is named, not answered with every choice there is), and a link to
    the same page without the bad arguments, keeping the good ones."""
    bad = set(error.messages)
    kept = [(key, value) for key, value in request.args.items(multi=True) if key not in bad]
    retry_url = request.path + (f"?{urlencode(kept)}" if kept else "")
    messages = [_readable(field, problems, error.data) for field, problems in error.messages.items()]
    return render_template("bad_request.html", messages=messages, retry_url=retry_url), 400


def _readable(field: str, problems, given) -> str:
    """``sort`` + ["Must be one of: model_name, …"] -> 'Sort by: “password” is not one of its choices.'"""
    value = given.get(field) if isinstance(given, dict) else None
    texts = [_choice_refused(text, value) for text in flatten_messages(problems)]
    return f"{CONTROL_LABELS.get(field, field)}: {' '.join(dict.fromkeys(texts))}"


def _choice_refused(text: str, value) -> str:
    """A "Must be one of: …" message (``"1: Must be …"`` for the second of several values) as one line."""
    index, _, rest = text.partition(": ")
    if index.isdigit() and rest.startswith(ONE_OF) and isinstance(value, list) and int(index) < len(value):
        return f"“{value[int(index)]}” is not one of its choices."
    return f"“{value}” is not one of its choices." if text.startswith(ONE_OF) else text
