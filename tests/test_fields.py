"""The checks modelhub.fields applies inside JSON values (load_config, and an import's JSON columns)."""

import pytest
from marshmallow import ValidationError

from modelhub.fields import JSON_MAX_DEPTH, Text, check_json_value


def _nested(depth: int):
    value = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def test_nesting_up_to_the_maximum_passes_and_one_level_more_is_refused():
    check_json_value(_nested(JSON_MAX_DEPTH))
    with pytest.raises(ValidationError, match=f"Nested deeper than {JSON_MAX_DEPTH} levels."):
        check_json_value(_nested(JSON_MAX_DEPTH + 1))


def test_non_finite_numbers_are_refused_at_any_depth():
    with pytest.raises(ValidationError, match="NaN and Infinity"):
        check_json_value({"a": [1, {"b": float("inf")}]})


def test_strings_keys_included_are_checked_only_when_a_text_field_is_given():
    value = {"a\x00": ["fine"]}
    check_json_value(value)
    with pytest.raises(ValidationError, match="NUL"):
        check_json_value(value, strings=Text(max_length=100))
    with pytest.raises(ValidationError, match="maximum of 3 characters"):
        check_json_value({"a": ["long"]}, strings=Text(max_length=3))
