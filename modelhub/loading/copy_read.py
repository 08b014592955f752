"""Which copy of a model's files a result was read from, as people and the API name it.

A run records the path it loaded (``copy_path``: a folder, or a GGUF file); a preflight checks one copy.
Read back beside the model's copies (``model_copy`` rows), that path is "GGUF Q4_K_M, LM Studio" rather
than a path, so a verdict says whether it was learned from the Q4_K_M file or from the safetensors
folder. A path that is none of the model's copies now (one forgotten since, or a hub download the
worker found by itself) is still named by its path, with nothing more known of it.
"""

from dataclasses import asdict, dataclass

from sqlalchemy import select

from modelhub import display
from modelhub.extensions import db
from modelhub.library_catalogue import library_id, of_copy
from modelhub.models import ModelCopy


@dataclass(frozen=True)
class CopyRead:
    """A copy of a model's files that a result read: its path, and what the registry knows of it."""

    path: str
    id: int | None = None  # None: the path is none of the model's copies on record
    library: str | None = None  # model_copy.library ("lmstudio", ...), or the one its location implies
    library_name: str | None = None  # "LM Studio"
    label: str | None = None  # the tool's own name for it ("publisher/repo/file.gguf", "llama3:8b")
    location: str | None = None  # primary / secondary / custom
    weight_format: str | None = None
    quantization: str | None = None  # "GGUF Q4_K_M", "GPTQ", None
    missing: bool = False  # the latest scan did not find it
    text: str | None = None  # "GGUF Q4_K_M, LM Studio"; the path (home as ~) when it is no copy on record
    where: str | None = None  # "LM Studio: publisher/repo/file.gguf": the modal's name for the copy

    @classmethod
    def of(cls, copy: ModelCopy, path: str | None = None) -> "CopyRead":
        """``copy`` as read through ``path`` (default its own path; another: one of its aliases)."""
        library = of_copy(copy)
        return cls(path=path or copy.path, id=copy.id, library=library_id(copy.library, copy.location),
                   library_name=library.name, label=copy.label, location=copy.location,
                   weight_format=copy.weight_format, quantization=copy.quantization, missing=bool(copy.missing),
                   text=f"{display.copy_format(copy)}, {library.name}",
                   where=f"{library.name}: {copy.label or display.path_in_library(copy)}")

    @classmethod
    def unknown(cls, path: str) -> "CopyRead":
        return cls(path=path, text=display.short_path(path), where=display.short_path(path))

    def as_dict(self) -> dict:
        return asdict(self)


def copies_read(model_id: int, paths) -> dict[str, CopyRead]:
    """``{path: CopyRead}`` for each of ``paths`` (None ones skipped), from one read of the model's copies:
    a copy's own path first, else a copy that has the path among its aliases (the same file through a
    symlink or hard link), else the path alone."""
    wanted = {path for path in paths if path}
    if not wanted:
        return {}
    copies = list(db.session.scalars(select(ModelCopy).where(ModelCopy.model_id == model_id).order_by(ModelCopy.id)))
    by_path = {copy.path: copy for copy in copies}
    by_alias = {alias["path"]: copy for copy in copies for alias in copy.aliases or []
                if isinstance(alias, dict) and alias.get("path")}
    found = {}
    for path in wanted:
        copy = by_path.get(path) or by_alias.get(path)
        found[path] = CopyRead.of(copy, path) if copy is not None else CopyRead.unknown(path)
    return found


def copy_read(model_id: int, path: str | None) -> CopyRead | None:
    """The one copy at ``path`` (None: no path, nothing was read from a local copy)."""
    return copies_read(model_id, [path]).get(path) if path else None
