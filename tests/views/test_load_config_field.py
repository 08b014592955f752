"""The modal's load config field as rendered: an empty config says the system defaults are used (not a
made-up config), a saved one is shown pretty-printed while the form keeps the text saved, so that saving
the field unchanged sends that text back and makes no load_config version (static/js/modelhub.js)."""

import json
import re
from html.parser import HTMLParser

import pytest

from modelhub import display

NAME = "microsoft/phi-2"
SAVED = '{"torch_dtype": "bfloat16", "attn_implementation": "eager", "max_memory": {"0": "15GiB", "cpu": "30GiB"}}'


class _Field(HTMLParser):
    """The load config textarea's attributes and text."""

    def __init__(self):
        super().__init__()
        self.attrs, self.text, self._inside = None, "", False

    def handle_starttag(self, tag, attrs):
        if tag == "textarea" and dict(attrs).get("id") == "field-load_config":
            self.attrs, self._inside = dict(attrs), True

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.text += data


def field(client) -> _Field:
    parser = _Field()
    parser.feed(client.get(f"/models/{NAME}/details").text)
    assert parser.attrs is not None
    return parser


def versions(client) -> list:
    return client.get(f"/api/models/{NAME}/configs").json["items"]


def test_an_empty_config_reads_as_the_system_defaults_not_as_a_config(client):
    client.post("/api/models", json={"model_name": NAME})
    found = field(client)
    assert found.attrs["placeholder"] == "Using system defaults (empty = no custom settings)"
    assert display.LOAD_CONFIG_PLACEHOLDER == found.attrs["placeholder"]
    assert "{" not in found.attrs["placeholder"]  # no made-up config that reads like a saved value
    assert found.text.strip() == "" and found.attrs["data-saved"] == ""


def test_a_saved_config_is_shown_pretty_printed_in_its_saved_order(client):
    client.post("/api/models", json={"model_name": NAME, "load_config": SAVED})
    found = field(client)
    shown = found.text.removeprefix("\n")  # the HTML parser keeps a leading newline browsers drop
    assert shown == ('{\n  "torch_dtype": "bfloat16",\n  "attn_implementation": "eager",\n'
                     '  "max_memory": {\n    "0": "15GiB",\n    "cpu": "30GiB"\n  }\n}')
    assert found.attrs["data-saved"] == SAVED  # the text as saved travels with the form
    assert client.get(f"/api/models/{NAME}").json["load_config"] == SAVED  # the API is not reformatted


def test_saving_the_unchanged_pretty_field_makes_no_version_and_keeps_the_text(client):
    client.post("/api/models", json={"model_name": NAME, "load_config": SAVED})
    before = versions(client)
    sent = field(client).attrs["data-saved"]  # what the form sends for a field left as shown
    response = client.patch(f"/api/models/{NAME}", json={"config": {"load_config": sent,
                                                                    "compatibility_notes": "eager only"}},
                            headers={"If-Match": client.get(f"/api/models/{NAME}").headers["ETag"]})
    assert response.status_code == 200, response.text
    assert versions(client) == before and len(before) == 1
    assert client.get(f"/api/models/{NAME}").json["load_config"] == SAVED


@pytest.mark.parametrize("text", ['{"a": 1,}', "not json"])
def test_a_stored_text_that_is_not_json_is_shown_as_it_is(text):
    assert display.load_config_text(text) == text


def test_pretty_printing_keeps_unicode_and_empty_configs():
    assert display.load_config_text('{"note":"é"}') == '{\n  "note": "é"\n}'
    assert display.load_config_text("") == "" and display.load_config_text(None) == ""
    assert json.loads(display.load_config_text(SAVED)) == json.loads(SAVED)
    assert not re.search(r"^ {4}\"torch", display.load_config_text(SAVED), re.M)
