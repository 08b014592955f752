"""``/api/models/{name}/card-scores``: import published quality scores from the model's own card."""

from flask.views import MethodView
from marshmallow import Schema, fields

from modelhub import card_scores, registry
from modelhub.api.http import Blueprint, etag_header
from modelhub.api.models import BUSY, NOT_FOUND, _document
from modelhub.schemas import ModelSchema

blp = Blueprint("cards", __name__, url_prefix="/api/models", description="Scores published on model cards.")


class CardImportSchema(Schema):
    imported = fields.Dict(
        keys=fields.String(), values=fields.Float(),
        metadata={"description": "The scores written: fields that were empty and that the card publishes."},
    )
    skipped = fields.List(fields.String(), metadata={"description": "Published on the card, but already set here (kept)."})
    problems = fields.List(fields.String(), metadata={"description": "Card content that could not be read or used."})
    model = fields.Nested(ModelSchema)


@blp.route("/<path:model_name>/card-scores")
class CardScores(MethodView):
    @blp.doc(operationId="importCardScores")
    @blp.response(200, CardImportSchema)
    @_document(NOT_FOUND, BUSY)
    def post(self, model_name):
        """Fill the model's empty quality scores from README.md (model-index) and .eval_results/*.yaml.

        Values already set (typed or measured) are never overwritten; each imported value's source is
        kept in ``metric_sources`` (``{"source": "card", "card": ..., "dataset": ..., "metric": ...}``).
        """
        result = card_scores.import_card_scores(registry.get_model(model_name))
        body = {"imported": result.imported, "skipped": result.skipped, "problems": result.problems, "model": result.model}
        return body, 200, etag_header(result.model)
