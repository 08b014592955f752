"""The preflight's query as the API, the modal and ``modelhub preflight`` take it: the load_config and the
context of ``PreflightQuerySchema``, and which copy of the model's files to check (``copy_id``)."""

from marshmallow import fields, validate

from modelhub.schemas import PreflightQuerySchema


class PreflightCopyQuerySchema(PreflightQuerySchema):
    """``GET /api/models/{name}/preflight``'s query."""

    copy_id = fields.Integer(strict=False, validate=validate.Range(min=1), metadata={
        "description": "Which copy of the model's files to check: one of the ids of GET /api/models/{name}/copies "
                       "(a folder, or a GGUF file: counted dequantized, as it loads). Default: the model's "
                       "cache_path (its primary copy), as a load without copy_id reads. Another model's copy, or an "
                       "unknown id, is a 422 naming the model's copies; a copy the latest scan did not find is a 409."})
