"""The filter bar shared by Models and Compare: its arguments read from the request, and the 400 page
for a page address holding an invalid one."""

from flask import render_template, request
from marshmallow import ValidationError, fields

from modelhub.messages import flatten_messages


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
    """The 400 page for a page address holding an invalid filter."""
    return render_template("bad_request.html", messages=list(flatten_messages(error.messages))), 400
