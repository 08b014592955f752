"""A failed try as the search sees it: its kind (``FAILURE_KINDS``) and cause, from the attempt's record.

The kind is set where the failure is understood: the plugin that explained it in the worker
(``Explanation.kind``, ``LoadRefused.kind``) or the watcher (a crash, a timeout, a SIGKILL). Attempts
recorded without one (older workers, other tools' plugins) are classified here from their text, so a
search still acts on them rather than giving up."""

import re

from modelhub.loading.types import FAILURE_KINDS, Failure
from modelhub.models import LoadAttempt

# Looked for in the error's type, message and explanation, in this order; the first match wins.
_TEXT_KINDS = (
    # A worker under MODELHUB_WORKER_MEMORY_LIMIT fails wherever the memory runs out: an allocation, the
    # weights file's mapping, a thread's stack.
    ("out_of_memory", re.compile(r"out of memory|can't allocate memory|OutOfMemoryError|Cannot allocate memory|"
                                 r"MemoryError|can't start new thread", re.I)),
    ("bf16_unsupported", re.compile(r"bf16|bfloat16", re.I)),
    ("non_finite", re.compile(r"non-finite|\bNaN\b", re.I)),
    ("attention", re.compile(r"attention|sdpa|flash", re.I)),
)
_INSTALL = re.compile(r"pip install ([A-Za-z0-9_.\-\[\]=,' ]+?)(?:[)\s.]*$|\s*\(|;)", re.M)


def of_attempt(attempt: LoadAttempt) -> Failure:
    known = attempt.failure_kind in FAILURE_KINDS and attempt.failure_kind != "other"
    kind = attempt.failure_kind if known else _from_text(attempt)
    cause = attempt.explanation or attempt.error_message or attempt.error_type or "The load failed."
    return Failure(kind=kind, cause=cause, error_type=attempt.error_type, error_message=attempt.error_message,
                   package=_package(cause) if kind == "missing_package" else None, suggestion=attempt.suggestion)


def _from_text(attempt: LoadAttempt) -> str:
    if attempt.error_type == "Timeout":
        return "timeout"
    if attempt.error_type == "WorkerDied":
        return "crash"
    text = " ".join(part for part in (attempt.error_type, attempt.error_message, attempt.explanation) if part)
    return next((kind for kind, pattern in _TEXT_KINDS if pattern.search(text)), "other")


def _package(text: str) -> str | None:
    found = _INSTALL.search(text or "")
    return found.group(1).strip().strip("'") if found else None
