"""Validation messages as lines for people (modelhub.messages)."""

from modelhub.messages import flatten_messages


def test_nested_fields_are_named_by_their_dotted_path_without_the_request_location():
    errors = {"json": {"metadata": {"mmlu_score": ["Too big.", "Not a number."]}, "_schema": ["Send a field."]}}
    assert list(flatten_messages(errors)) == [
        "metadata.mmlu_score: Too big.", "metadata.mmlu_score: Not a number.", "Send a field."]


def test_list_indexes_are_part_of_the_path_and_a_bare_message_stays_as_it_is():
    assert list(flatten_messages({"models": {0: {"model_name": ["Duplicate."]}}})) == ["models.0.model_name: Duplicate."]
    assert list(flatten_messages(["Must be a JSON object."])) == ["Must be a JSON object."]
