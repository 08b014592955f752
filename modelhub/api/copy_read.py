"""The API's name for the copy of a model's files a result read (modelhub/loading/copy_read.py): in a
preflight's answer (the copy it checked) and in each row of where a model loads (the copy its newest
result read)."""

from marshmallow import Schema, fields

from modelhub.schemas import cache_location, library


class CopyReadSchema(Schema):
    """A copy of the model's files that a result was read from, as the registry knows it now."""

    id = fields.Integer(allow_none=True, metadata={
        "description": "Its id (GET /api/models/{name}/copies; copy_id in a load, a measurement or a preflight); "
                       "null: the path is none of the model's copies on record now."})
    path = fields.String(metadata={"description": "The folder, or for a GGUF copy the GGUF file itself."})
    library = library(allow_none=True, metadata={
        "description": "Whose files hold it (HF cache, LM Studio, Ollama, ...); null when not a copy on record."})
    library_name = fields.String(allow_none=True, metadata={"description": "The library for people: 'LM Studio'."})
    label = fields.String(allow_none=True, metadata={
        "description": "The tool's own name for it (LM Studio: 'publisher/repo/file.gguf'; Ollama: 'llama3:8b')."})
    location = cache_location(allow_none=True)
    weight_format = fields.String(allow_none=True, metadata={"description": "safetensors, pickle, both, gguf or null"})
    quantization = fields.String(allow_none=True, metadata={"description": "e.g. 'GGUF Q4_K_M', 'GPTQ', or null"})
    missing = fields.Boolean(metadata={"description": "The latest scan did not find it."})
    text = fields.String(metadata={
        "description": "What it is and where, for people: 'GGUF Q4_K_M, LM Studio'; the path when not a copy on record."})
    where = fields.String(metadata={
        "description": "Its library and its name there: 'LM Studio: publisher/repo/file.gguf' (as the modal lists copies)."})
