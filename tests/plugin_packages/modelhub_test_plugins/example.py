"""A complete example plugin (docs/plugins.md walks through it).

It owns one load_config key, ``example_tag``: a label the user gives a configuration ("bf16-eager").
The tag is not a from_pretrained argument, so the plugin takes it out of the kwargs and notes it. It
adds the host name to the environment facts, and appends every attempt's outcome, with the tag, to a
JSON-lines file named by ``MODELHUB_EXAMPLE_LOG``.
"""

import json
import os
import socket

from marshmallow import fields, validate

from modelhub import hookimpl


@hookimpl
def load_config_fields():
    return {"example_tag": fields.String(validate=validate.Length(min=1, max=40))}


@hookimpl
def describe_environment(environment):
    return {"example": {"hostname": socket.gethostname()}}


@hookimpl
def adjust_load_kwargs(model, kwargs):
    tag = kwargs.pop("example_tag", None)
    if tag is None:
        return None
    return [f"configuration tagged {tag!r} for {model.name}"]


@hookimpl
def load_attempt_finished(model_name, attempt):
    path = os.environ.get("MODELHUB_EXAMPLE_LOG")
    if not path:
        return
    tag = json.loads(attempt["load_config"] or "{}").get("example_tag")
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"model": model_name, "outcome": attempt["outcome"], "tag": tag}) + "\n")
