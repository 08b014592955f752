"""The API's schemas for discovery: a model's copies on disk (where each lives: the tool's library and its
root; what it is) and a scan's status (progress, summary, the roots looked in)."""

from marshmallow import Schema, fields, post_dump

from modelhub.fields import Choice, UtcDateTime
from modelhub.library_catalogue import LIBRARY_IDS, library_id
from modelhub.schemas import cache_location


def library(**kwargs) -> Choice:
    return Choice(LIBRARY_IDS, component="Library", **kwargs)


class CopyAliasSchema(Schema):
    """Another path of the very same file (a symlink or hard link), e.g. in another tool's library."""

    path = fields.String()
    library = library()


class ModelCopySchema(Schema):
    """One copy of a model's files on disk: where it lives (the tool's library and its root), what it is."""

    id = fields.Integer(metadata={"description": "Names this copy in a load or measure request (copy_id)."})
    location = cache_location()
    library = library(metadata={
        "description": "Whose files hold the copy: the HF cache, LM Studio, Ollama, text-generation-webui, a "
                       "secondary folder, or a custom path. A copy in another tool's library is a 'secondary' "
                       "location; modelhub only reads it (never moves, renames or deletes it)."})
    library_root = fields.String(allow_none=True, metadata={"description": "The library's root, as configured."})
    label = fields.String(allow_none=True, metadata={
        "description": "The tool's own name for the copy (Ollama: 'llama3:8b, llama3:latest'; LM Studio: "
                       "'publisher/repo/file.gguf')."})
    path = fields.String(metadata={"description": "The model's folder, or for a GGUF copy the GGUF file itself."})
    revision = fields.String(allow_none=True)
    size_bytes = fields.Integer()
    weight_format = fields.String(allow_none=True, metadata={"description": "safetensors, pickle, both, gguf or null"})
    architecture = fields.String(allow_none=True)
    model_type = fields.String(allow_none=True)
    quantization = fields.String(allow_none=True, metadata={"description": "e.g. 'GGUF Q4_K_M', 'GPTQ', or null"})
    parameter_count = fields.Integer(allow_none=True, metadata={"description": "From a GGUF header: its tensors' elements."})
    context_length = fields.Integer(allow_none=True, metadata={"description": "From a GGUF header, in tokens."})
    digest = fields.String(allow_none=True, metadata={"description": "sha256:<hex> of a GGUF file, when known."})
    aliases = fields.List(fields.Nested(CopyAliasSchema), metadata={
        "description": "The same file reached through other paths (symlinks, hard links): one copy, not several."})
    incomplete = fields.Boolean()
    incomplete_reason = fields.String(allow_none=True)
    missing = fields.Boolean()
    first_seen_at = UtcDateTime()
    last_seen_at = UtcDateTime()

    @post_dump(pass_original=True)
    def _library_of_older_copies(self, data, copy, **kwargs):
        # Copies recorded before libraries were carry none: the location says which it is.
        data["library"] = library_id(copy.library, copy.location)
        data["aliases"] = data.get("aliases") or []
        return data


class ScanProblemSchema(Schema):
    path = fields.String()
    message = fields.String()


class ScanSummarySchema(Schema):
    added = fields.List(fields.String())
    copies_added = fields.Integer()
    went_missing = fields.List(fields.String())
    came_back = fields.List(fields.String())
    problems = fields.List(fields.Nested(ScanProblemSchema))


class ScanRootSchema(Schema):
    """One root a scan looks in, and what the registry holds from it now."""

    library = library()
    location = cache_location()
    root = fields.String(allow_none=True, metadata={"description": "null for custom paths (each its own)"})
    exists = fields.Boolean(metadata={"description": "Whether the root is on disk now."})
    copies = fields.Integer(metadata={"description": "Copies found there on the last scan and present."})
    size_bytes = fields.Integer(metadata={"description": "Bytes of those copies."})
    missing = fields.Integer(metadata={"description": "Copies recorded there that a scan no longer found."})
    linked = fields.Integer(metadata={
        "description": "Files there that are links (symlinks, hard links) to a copy counted under another root."})
    problems = fields.List(fields.Nested(ScanProblemSchema), metadata={
        "description": "What the last scan could not read under this root."})


class ScanStatusSchema(Schema):
    state = fields.String(metadata={"description": "idle, running, finished or failed"})
    done = fields.Integer()
    total = fields.Integer()
    started_at = fields.Float()
    finished_at = fields.Float()
    summary = fields.Nested(ScanSummarySchema)
    error = fields.String()
    roots = fields.List(fields.Nested(ScanRootSchema), metadata={
        "description": "Each root scanned (the HF cache, secondary folders, LM Studio, Ollama, "
                       "text-generation-webui) with its library and what it holds; absent while a scan runs."})
