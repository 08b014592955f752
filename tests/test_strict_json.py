"""modelhub.strict_json: the JSON every body and every load_config string goes through."""

import pytest

from modelhub.strict_json import MAX_INTEGER_DIGITS, JsonError, loads


def test_plain_json_parses_as_json_would():
    assert loads('{"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}}') == {
        "a": [1, -2, 3.5, "x", None, True], "b": {"c": {}}}
    assert loads(b'{"caf\xc3\xa9": 1}') == {"café": 1}


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a": 1, "a": 2}', "the key 'a' appears twice in one object."),
        ('[{"x": {"dtype": "a", "dtype": "b"}}]', "the key 'dtype' appears twice in one object."),
        ("1" * (MAX_INTEGER_DIGITS + 1), f"an integer of {MAX_INTEGER_DIGITS + 1:,} digits (the limit is 4,300)."),
        ("-" + "9" * 5000, "an integer of 5,000 digits (the limit is 4,300)."),
        ('{"x": NaN}', "NaN is not allowed."),
        ("-Infinity", "-Infinity is not allowed."),
        ('{"a": 1,}', "Expecting property name enclosed in double quotes: line 1 column 9"),
        ("[" * 100_000, "nested too deeply."),
        (b'{"a": "\xff"}', "Not UTF-8 text (byte 7)."),
    ],
)
def test_refusals_say_why(text, message):
    with pytest.raises(JsonError) as refused:
        loads(text)
    assert str(refused.value) == message


def test_the_longest_integer_python_converts_is_accepted():
    assert loads("7" * MAX_INTEGER_DIGITS) == int("7" * MAX_INTEGER_DIGITS)


def test_non_finite_numbers_may_be_left_to_the_schema():
    assert loads('{"x": NaN, "y": -Infinity}', allow_non_finite=True)["y"] == float("-inf")
