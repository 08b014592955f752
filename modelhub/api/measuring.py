"""Measuring models: ``POST /api/models/{name}/benchmark`` and ``GET /api/models/{name}/measurements``."""

from flask import current_app, url_for
from flask.views import MethodView

from modelhub import registry
from modelhub.api.http import Blueprint
from modelhub.api.loading import CONFLICT, with_copy_checked
from modelhub.api.models import BODY_ERRORS, BUSY, NOT_FOUND, _document
from modelhub.measuring import measurements
from modelhub.measuring.schemas import BenchmarkRequestSchema, MeasurementSchema

blp = Blueprint("measuring", __name__, url_prefix="/api/models", description="Measuring models on this machine.")


@blp.route("/<path:model_name>/benchmark")
class Benchmark(MethodView):
    @blp.doc(operationId="startBenchmark")
    @blp.arguments(BenchmarkRequestSchema(), required=False)
    @blp.response(202, MeasurementSchema)
    @_document(*BODY_ERRORS, NOT_FOUND, CONFLICT, BUSY)
    def post(self, options, model_name):
        """Measure TTFT, throughput, perplexity and memory in a worker; follow it with GET .../measurements."""
        measurement = with_copy_checked(lambda: current_app.extensions["modelhub.supervisor"].measure(model_name,
                                                                                                     **options))
        return measurement, 202, {"Location": url_for("measuring.Measurements", model_name=model_name)}


@blp.route("/<path:model_name>/measurements")
class Measurements(MethodView):
    @blp.doc(operationId="listMeasurements")
    @blp.response(200, MeasurementSchema(many=True))
    @_document(NOT_FOUND, BUSY)
    def get(self, model_name):
        """The model's measurements, newest first (the history stays)."""
        return measurements.history(registry.get_model(model_name))
