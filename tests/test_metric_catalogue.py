"""The metric catalogue is the one list of metrics: the registry's columns, the API's fields, the
export's keys and the pages are all the catalogue's metrics, in its order."""

import pytest
from marshmallow import validate
from sqlalchemy import Float

from modelhub import display
from modelhub.exchange.schemas import ModelEntry
from modelhub.metric_catalogue import BY_FIELD, METRIC_FIELDS, METRICS, SCORE_FIELDS
from modelhub.models import ModelRegistry
from modelhub.schemas import MetadataFields, ModelSchema


def _metrics_in(names) -> list[str]:
    return [name for name in names if name in BY_FIELD]


def test_every_number_column_of_a_model_is_a_metric_of_the_catalogue_and_back():
    columns = [column.name for column in ModelRegistry.__table__.columns if isinstance(column.type, Float)]
    assert columns == list(METRIC_FIELDS)


@pytest.mark.parametrize("schema", [MetadataFields, ModelSchema, ModelEntry])
def test_schemas_hold_every_metric_in_the_catalogue_order(schema):
    assert _metrics_in(schema._declared_fields) == list(METRIC_FIELDS)


def test_metadata_fields_are_the_metrics_then_quantization():
    assert list(MetadataFields._declared_fields) == [*METRIC_FIELDS, "quantization"]


@pytest.mark.parametrize("schema", [MetadataFields, ModelEntry])
def test_a_score_accepts_0_to_100_and_every_other_metric_any_number_from_0(schema):
    for metric in METRICS:
        (bounds,) = [v for v in schema._declared_fields[metric.field].validators if isinstance(v, validate.Range)]
        assert (bounds.min, bounds.max) == (0, 100 if metric.field in SCORE_FIELDS else None), metric.field


def test_the_modal_shows_every_metric_once_in_the_catalogue_order():
    assert display.QUALITY + display.OPERATIONAL == list(METRICS)


def test_the_sort_menu_offers_every_metric_best_first():
    sorts = dict(display.SORTS)
    for metric in METRICS:
        best_first = f"-{metric.field}" if metric.higher_is_better else metric.field
        assert best_first in sorts, metric.field
    assert sorts["perplexity"] == "Perplexity (lowest first)" and sorts["-mmlu_score"] == "MMLU (highest first)"


def test_the_export_writes_the_metrics_in_the_catalogue_order(client):
    values = {field: float(index) for index, field in enumerate(METRIC_FIELDS)}
    assert client.post("/api/models", json={"model_name": "every-metric", **values}).status_code == 201
    (entry,) = client.get("/api/export").get_json()["models"]
    assert _metrics_in(entry) == list(METRIC_FIELDS)
    assert {field: entry[field] for field in METRIC_FIELDS} == values
