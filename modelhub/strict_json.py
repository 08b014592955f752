"""JSON text parsed the strict way, for every request body and every JSON string a user sends.

Python's ``json`` module accepts what a registry must not store or silently reinterpret:
``NaN``/``Infinity``; a key given twice (the last one wins, so ``{"load_config": ..., "load_config": ...}``
saves something the sender may not have meant); and integers too long for ``int()``, which raise a
plain ``ValueError`` (a 500) instead of a decode error.
"""

import json

# Python refuses to convert longer decimal strings to int (sys.int_info.default_max_str_digits), so a
# longer integer could not be parsed anyway; no field modelhub stores needs a fraction of that.
MAX_INTEGER_DIGITS = 4300


class JsonError(ValueError):
    """Text that is not JSON modelhub accepts; the message says why and, for syntax, where."""


def loads(text: str | bytes, *, allow_non_finite: bool = False):
    """Parse ``text``; raise JsonError for bad syntax, NaN/Infinity, duplicate keys, huge integers or
    nesting deeper than Python's recursion limit.

    ``allow_non_finite`` lets NaN/Infinity through as floats, for a request body whose schema refuses
    them field by field (a 422 naming the field says more than a 400 for the whole body).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonError(f"Not UTF-8 text (byte {error.start}).") from None
    try:
        return json.loads(text, parse_constant=float if allow_non_finite else _refuse_constant, parse_int=_parse_int,
                          object_pairs_hook=_object_without_duplicate_keys)
    except json.JSONDecodeError as error:
        raise JsonError(f"{error.msg}: line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise JsonError("nested too deeply.") from None


def _refuse_constant(name: str):
    raise JsonError(f"{name} is not allowed.")


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise JsonError(f"an integer of {len(digits.lstrip('-')):,} digits (the limit is {MAX_INTEGER_DIGITS:,}).")
    return int(digits)


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise JsonError(f"the key {key!r} appears twice in one object.")
        result[key] = value
    return result
