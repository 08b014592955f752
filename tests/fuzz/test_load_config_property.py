"""Property: validating a load_config, whatever arrives, ends in a value or a ValidationError.

Never a TypeError, RecursionError, KeyError... which the API would turn into a 500. Values are JSON-ish
(what a JSON body can hold, plus NaN/Infinity), strings (JSON text or not, deeply nested), and
objects built from the keys the loaded plugins declare, so each plugin's own fields are reached.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from modelhub.app import create_app
from modelhub.exchange.schemas import CompatibilityReport, ModelEntry
from modelhub.fields import LoadConfig
from modelhub.schemas import CombinedUpdateSchema, ConfigUpdateSchema, ModelCreateSchema

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)
nested = st.tuples(st.integers(0, 3000), st.sampled_from(["[", '{"a":'])).map(
    lambda pair: pair[1] * pair[0] + "1" + ("]" if pair[1] == "[" else "}") * pair[0])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("load-config-property")
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{home / 'models.db'}",
                       "MODELHUB_HOME": str(home), "MODELHUB_AUTO_UPGRADE": False})


@pytest.fixture(scope="module")
def load_configs(app):
    """Anything a client could send as load_config, weighted towards what gets past the first checks."""
    keys = sorted(app.extensions["modelhub.plugins"].fields)
    known = st.dictionaries(st.sampled_from(keys), json_values, min_size=1, max_size=4)
    objects = known | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    texts = st.text() | nested | json_values.map(json.dumps) | known.map(json.dumps)
    return objects | texts | json_values


def _validate(schema, data):
    try:
        return schema.load(data)
    except ValidationError as error:
        assert error.messages  # a refusal always says why
        return None


def test_the_field_and_every_schema_using_it_only_ever_refuse_with_a_validation_error(app, load_configs):
    @SETTINGS
    @given(value=load_configs)
    def check(value):
        with app.app_context():
            try:
                text = LoadConfig(allow_none=True).deserialize(value)
            except ValidationError:
                text = ...
            if text is not ... and text is not None:  # accepted: what is stored is a JSON object's text
                assert isinstance(json.loads(text), dict)
            _validate(ConfigUpdateSchema(), {"load_config": value})
            _validate(CombinedUpdateSchema(), {"config": {"load_config": value}})
            _validate(ModelCreateSchema(), {"model_name": "org/model", "load_config": value})
            _validate(ModelEntry(), {"model_name": "org/model", "load_config": value})
            _validate(CompatibilityReport(), {"format": "modelhub-compatibility-report", "version": 1,
                                              "model_name": "org/model", "hf_path": "org/model",
                                              "load_config": value, "proven_on": {}})

    check()


def test_a_string_and_the_object_it_holds_get_the_same_verdict(app, load_configs):
    @SETTINGS
    @given(value=st.dictionaries(st.sampled_from(sorted(app.extensions["modelhub.plugins"].fields)), json_values,
                                 max_size=3))
    def check(value):
        with app.app_context():
            field = LoadConfig(allow_none=True)
            verdicts = []
            for form in (value, json.dumps(value)):
                try:
                    verdicts.append(json.loads(field.deserialize(form) or "{}"))
                except ValidationError:
                    verdicts.append("refused")
            assert verdicts[0] == verdicts[1]

    check()
