"""Validation messages (marshmallow's, nested by field) as lines for people: the API's ``message``,
the pages' 400 and import errors, the CLI, and a load_config key's errors. Imports nothing of Flask:
load workers use it through modelhub.fields."""


def flatten_messages(errors, prefix: str = ""):
    """``{"json": {"metadata": {"mmlu_score": ["Too big."]}}}`` -> ``["metadata.mmlu_score: Too big."]``."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            # The request location ("json", "query") is noise in a sentence meant for people.
            # "_schema" marks an error about the request as a whole.
            location = not prefix and key in ("json", "query", "headers")
            name = prefix.rstrip(".") if location or key == "_schema" else f"{prefix}{key}"
            yield from flatten_messages(value, f"{name}." if name else "")
    elif isinstance(errors, list):
        for item in errors:
            yield from flatten_messages(item, prefix)
    else:
        yield f"{prefix.rstrip('.')}: {errors}" if prefix else str(errors)
