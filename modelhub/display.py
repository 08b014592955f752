"""How registry fields are presented on the pages: the modal's sections and hints, badges, sorts.

Declared once here (the metrics' labels and formats in modelhub.metric_catalogue) so the model cards,
the details modal and the filter bar stay in step.
"""

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC

from modelhub.library_catalogue import BY_ID, LIBRARIES, LIBRARY_IDS, Library, of_copy
from modelhub.metric_catalogue import BY_FIELD, METRICS
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


def _best_first(metric) -> str:
    """A metric's sort entry, saying its direction: "MMLU (highest first)", "Perplexity (lowest first)"."""
    name = (metric.sort_label or metric.label).split(" (")[0]
    return f"{name} ({'highest' if metric.higher_is_better else 'lowest'} first)"


# (value of ?sort=, label) for the filter bar: each label says which end comes first; best-first for every metric.
SORTS = [
    ("model_name", "Name (A–Z)"),
    ("compatibility_status", "Status (A–Z)"),
    ("-updated_at", "Recently changed (newest first)"),
    ("-last_tested", "Last tested (recent first)"),
    ("-size_bytes", "Size (largest first)"),
    ("-parameters", "Parameters (most first)"),
    ("format", "Format (A–Z)"),
    ("library", "Location (HF cache first)"),
    *[(f"-{m.field}" if m.higher_is_better else m.field, _best_first(m)) for m in METRICS],
]


def badges(model, copy_badges=()) -> list[str]:
    """The benchmark badges of a model card: one per metric that is set, then the quantization unless a
    location badge (``copy_badges``) already says it ("LM Studio GGUF Q8_0" beside "GGUF Q8_0")."""
    values = [(m, getattr(model, m.field)) for m in METRICS]
    texts = [m.badge.format(value=number(value)) for m, value in values if value is not None]
    if model.quantization and not any(model.quantization in badge.format_list for badge in copy_badges):
        texts.append(model.quantization)
    return texts


def number(value: float) -> str:
    """72.5 -> "72.5", 38.0 -> "38", 8.1234 -> "8.12": badges are read at a glance."""
    return f"{value:.2f}".rstrip("0").rstrip(".")

# The filter bar's location menu: every library a copy can live in, in the catalogue's order.
LOCATION_CHOICES = LIBRARIES
# The table view's score columns, (metric, header): the ones a user scans a long list by.
TABLE_METRICS = [(BY_FIELD["mmlu_score"], "MMLU"), (BY_FIELD["humaneval_score"], "HumanEval"),
                 (BY_FIELD["max_throughput_tokens_sec"], "tok/s")]


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


_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(count: int | None) -> str:
    """4_100_000_000 -> "4.1 GB": sizes as LM Studio and ``ollama list`` show them (decimal units)."""
    if count is None:
        return ""
    value, unit = float(count), 0
    while value >= 1000 and unit < len(_BYTE_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return f"{count} B"
    return (f"{value:.1f}".removesuffix(".0") if value < 100 else f"{value:.0f}") + f" {_BYTE_UNITS[unit]}"


def relative_time(moment, now) -> str:
    """How long ago ``moment`` was, at a glance: "just now", "5 min ago", "3 h ago", "2 d ago", "4 mo ago"."""
    if moment.tzinfo is None:  # SQLite gives back naive UTC
        moment = moment.replace(tzinfo=now.tzinfo)
    seconds = max(0, (now - moment).total_seconds())
    for limit, size, unit in ((60, 1, None), (3600, 60, "min"), (86400, 3600, "h"), (86400 * 45, 86400, "d"),
                              (86400 * 365, 86400 * 30, "mo")):
        if seconds < limit:
            return "just now" if unit is None else f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds // (86400 * 365))} y ago"


def exact_time(moment) -> str:
    """The exact moment, for the title beside a relative time: "2026-11-30 14:05 UTC"."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment  # SQLite gives back naive UTC
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def iso_time(moment) -> str:
    """A moment for a <time datetime>: UTC, to the second, "2026-11-30T14:05:09Z"."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


TEST_OUTCOMES = {"success": "Loaded", "failure": "Failed"}
