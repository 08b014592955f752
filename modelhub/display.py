"""How registry fields are presented on the pages: the modal's sections and hints, badges, sorts.

Declared once here (the metrics' labels and formats in modelhub.metric_catalogue) so the model cards,
the details modal and the filter bar stay in step.
"""

import json
import os
import re
from dataclasses import dataclass

from modelhub.library_catalogue import BY_ID, LIBRARY_IDS, Library, of_copy
from modelhub.metric_catalogue import METRICS
from modelhub.models import COMPATIBILITY_STATUSES

# The details modal's two groups of metric fields.
QUALITY = [metric for metric in METRICS if metric.section == "quality"]
OPERATIONAL = [metric for metric in METRICS if metric.section == "operational"]
QUANTIZATION_HINT = 'Type (e.g., "GGUF Q4_K_M", "None")'

STATUS_HINTS = {
    "unknown": "Model never tested",
    "compatible": "Model loads successfully",
    "incompatible": "Model fails to load",
    "degraded": "Intermittent failures",
    "testing": "Currently being tested",
}
assert tuple(STATUS_HINTS) == COMPATIBILITY_STATUSES

# What an empty load config field says: no config is a real state (the loader's defaults), not a value to copy.
LOAD_CONFIG_PLACEHOLDER = "Using system defaults (empty = no custom settings)"


def load_config_text(text: str | None) -> str:
    """A saved load config as the modal's field shows it: pretty-printed (indent 2, keys in the saved
    order), however it was typed. Only the field is formatted: the registry keeps the text exactly as
    saved, and the form sends that text back when the field was not edited (``data-saved``), so saving
    it unchanged makes no load_config version. A text that is not JSON is shown as it is."""
    if not text or not text.strip():
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# (value of ?sort=, label) for the filter bar: better-first for every metric.
SORTS = [
    ("model_name", "Name"),
    ("compatibility_status", "Status"),
    ("-updated_at", "Recently changed"),
    *[(f"-{m.field}" if m.higher_is_better else m.field, m.sort_label or m.label) for m in METRICS],
]


def badges(model, copy_badges=()) -> list[str]:
    """The benchmark badges of a model card: one per metric that is set, then the quantization unless a
    location badge (``copy_badges``) already says it ("LM Studio GGUF Q8_0" beside "GGUF Q8_0")."""
    values = [(m, getattr(model, m.field)) for m in METRICS]
    texts = [m.badge.format(value=_number(value)) for m, value in values if value is not None]
    if model.quantization and not any(model.quantization in badge.format_list for badge in copy_badges):
        texts.append(model.quantization)
    return texts


def _number(value: float) -> str:
    """72.5 -> "72.5", 38.0 -> "38", 8.1234 -> "8.12": badges are read at a glance."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def here_mark(model, here) -> tuple[str, str] | None:
    """The card's mark for this host, as (text, status class), when what the card shows is not what this
    host knows: its own status differs from the registry's, it has only results from before its
    environment changed, or the status was learned on other hosts only. None while a load runs, or
    when there is nothing to tell (``here`` None: not looked up)."""
    if here is None or model.compatibility_status == "testing":
        return None
    if here.status is not None:
        return None if here.status == model.compatibility_status else (f"here: {here.status}", here.status)
    if here.stale:
        return "here: needs retest", "unknown"
    if here.elsewhere:
        return "here: untested", "unknown"
    return None


def here_title(text: str) -> str:
    """The hover text of the card's mark."""
    if text == "here: needs retest":
        return "This host's results are from before its libraries or driver changed: load it again here"
    if text == "here: untested":
        return "Learned on other hosts: not loaded on this host yet"
    return "Its status on this host (the badge is the registry's, from every host)"


# ---- copies and the places they live (the cards' location badges, the modal's "Copies on disk") -------

GGUF = "GGUF "


@dataclass
class CopyBadge:
    """One badge of a card: the copies of one library in one state, e.g. "LM Studio GGUF Q4_K_M, Q8_0"."""

    library: Library
    formats: str  # "GGUF Q4_K_M, Q8_0", "safetensors", ...
    format_list: list[str]  # each copy's format: "GGUF Q4_K_M", "GGUF Q8_0"
    state: str  # "present" | "incomplete" | "missing"
    title: str  # the hover text: where each copy is


def copy_badges(copies) -> list[CopyBadge]:
    """A card's location badges: one per library and state (libraries in the catalogue's order,
    present copies first), naming the formats found there once each."""
    groups: dict[tuple[str, str], list] = {}
    for copy in copies:
        groups.setdefault((of_copy(copy).id, copy_state(copy)), []).append(copy)
    order = sorted(groups, key=lambda key: (LIBRARY_IDS.index(key[0]), STATES.index(key[1])))
    return [_badge(groups[key], key[1]) for key in order]


STATES = ("present", "incomplete", "missing")


def copy_state(copy) -> str:
    return "missing" if copy.missing else "incomplete" if copy.incomplete else "present"


def copy_format(copy) -> str:
    """What a copy is, in a word or two: "GGUF Q4_K_M", "safetensors, GPTQ", "safetensors", "no weights"."""
    weights, quantization = copy.weight_format, copy.quantization
    if quantization and (not weights or quantization.lower().startswith(weights.lower())):
        return quantization  # a GGUF file's quantization names its format too
    return ", ".join(filter(None, (weights, quantization))) or "no weights"


def path_in_library(copy) -> str:
    """A copy's path as its row shows it beside its library's root: relative to that root when it lies
    under it ("TheBloke/…/x.Q4_K_M.gguf"), else whole; digests and commit hashes cut to 12 characters
    ("blobs/sha256-5f5f5f5f5f5f…": the row's title holds the whole path)."""
    root = (copy.library_root or "").rstrip("/")
    path = copy.path[len(root) + 1:] if root and copy.path.startswith(root + "/") else short_path(copy.path)
    return _LONG_HEX.sub(lambda match: match.group(0)[:12] + "…", path)


_LONG_HEX = re.compile(r"[0-9a-f]{32,}")


def short_path(path: str | None) -> str:
    """A path with the home directory written ``~``, as users type it (``~/.ollama/models``)."""
    if not path:
        return ""
    home = os.path.expanduser("~").rstrip("/")
    return "~" + path[len(home):] if home and (path == home or path.startswith(home + "/")) else path


def copy_named(copies, path: str | None) -> str:
    """The copy a run loaded, as the modal names it: "LM Studio: publisher/repo/file.gguf", "HF cache:
    models--org--name/snapshots/…"; a path that is no longer one of the copies, as it is."""
    copy = next((copy for copy in copies if copy.path == path), None)
    if copy is None:
        return short_path(path)
    return f"{of_copy(copy).name}: {copy.label or path_in_library(copy)}"


def library_of(copy) -> Library:
    """The library a copy lives in (from its row; older rows: from its location)."""
    return of_copy(copy)


def library(library_id: str) -> Library:
    return BY_ID[library_id]


def library_name(library: str | None) -> str:
    """A library's name on the pages ("ollama" -> "Ollama"); an unknown one as it is."""
    return BY_ID[library].name if library in BY_ID else (library or "")


def _badge(copies: list, state: str) -> CopyBadge:
    formats = list(dict.fromkeys(copy_format(copy) for copy in copies))
    if len(formats) > 1 and all(text.startswith(GGUF) for text in formats):
        text = GGUF + ", ".join(text.removeprefix(GGUF) for text in formats)  # "GGUF Q4_K_M, Q8_0"
    else:
        text = ", ".join(formats)
    library = of_copy(copies[0])
    where = [f"{copy.label or copy.path}{'' if state == 'present' else f' ({state})'}" for copy in copies]
    return CopyBadge(library, text, formats, state, f"{library.name}: " + "; ".join(where))


def parameters(count: int | None) -> str:
    """1_100_048_384 -> "1.1B", 134_515_008 -> "135M": parameter counts as model names write them."""
    if count is None:
        return ""
    for unit, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= unit:
            value = count / unit
            return (f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}") + suffix
    return str(count)
