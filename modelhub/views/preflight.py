"""Will it load here, on the pages: the details modal's "Will it load here?" section
(``preflight/_preflight.html``), re-rendered as the user edits the load config (htmx, debounced, with the
text typed and not saved) or picks which copy of the model's files to check, and each card's
fits/tight/won't-fit mark (``preflight/_mark.html``)."""

import json
from dataclasses import dataclass

from flask import Blueprint, current_app, render_template, request
from marshmallow import EXCLUDE, ValidationError

from modelhub import preflight, registry
from modelhub.exceptions import CopyMissing, UnknownCopy
from modelhub.loading.copy_read import CopyRead
from modelhub.messages import flatten_messages
from modelhub.preflight.schemas import PreflightCopyQuerySchema

bp = Blueprint("preflight", __name__)
_query_schema = PreflightCopyQuerySchema(unknown=EXCLUDE)
SECTION = "preflight/_preflight.html"


@dataclass(frozen=True)
class CopyChoice:
    """One option of the section's "Check copy" select."""

    value: str  # "": the model's cache_path, as a Load that names no copy reads; else a copy's id
    text: str  # "GGUF Q4_K_M, LM Studio"
    title: str  # where it is: "LM Studio: publisher/repo/file.gguf", and its path
    selected: bool


@bp.route("/models/<path:model_name>/preflight")
def preflight_section(model_name):
    """The section for the load config sent (the editor's text, not saved), else the saved one, checked
    against the copy chosen (``copy_id``; none or empty: the model's cache_path). A text the API would
    refuse, or a copy that cannot be checked (none of the model's, or gone missing since the modal was
    read), answers 422 with the section saying why in place of the verdict: static/js/modelhub.js swaps a
    422 section in (typing half a JSON object is not an error page; the API says 409 for a missing copy)."""
    model = registry.get_model(model_name)
    args = {key: value for key, value in request.args.items() if not (key == "copy_id" and value == "")}
    asked = _asked_copy(args.get("copy_id"))
    try:
        query = _query_schema.load(args)
    except ValidationError as error:
        about = "copy" if set(error.messages) == {"copy_id"} else "config"
        return _refused(model, asked, list(flatten_messages(error.messages)), about)
    try:
        values = section_values(model, query.get("load_config"), query.get("context"), query.get("copy_id"))
    except (UnknownCopy, CopyMissing) as refused:
        return _refused(model, asked, [str(refused)], "copy")
    return render_template(SECTION, model=model, **values)


def section_values(model, load_config: dict | None = None, context_tokens: int | None = None,
                   copy_id: int | None = None) -> dict:
    """What ``_preflight.html`` shows: the preflight of ``load_config`` (None: the saved one) for copy
    ``copy_id`` (None: the model's cache_path), and the copies to choose from. The editor's text is sent
    with every re-render, also when the user only picks another copy: a text that is the saved config is
    checked as the saved one, so the section does not claim an edit nobody made."""
    if load_config is not None and load_config == _saved_config(model):
        load_config = None
    return {"preflight": preflight.check(current_app, model, load_config=load_config, context_tokens=context_tokens,
                                         copy_id=copy_id),
            "preflight_errors": None, "copy_choices": copy_choices(model, copy_id)}


def copy_choices(model, chosen_id: int | None) -> list[CopyChoice]:
    """The "Check copy" options: the model's default copy (its cache_path, value ""), then each other copy
    the latest scan found. Empty when there is nothing to choose between. A chosen id that is none of
    them (gone missing since, or not this model's) stays selected, named as such, beside the message
    saying why it cannot be checked."""
    copies = registry.copies(model)
    default = next((copy for copy in copies if copy.path == model.cache_path), None)
    if chosen_id is not None and default is not None and chosen_id == default.id:
        chosen_id = None  # the default copy asked for by its id: the same files
    choices = [_default_choice(model, default, selected=chosen_id is None)]
    for copy in copies:
        if copy is not default and not copy.missing:
            choices.append(_choice(CopyRead.of(copy), str(copy.id), copy.id == chosen_id))
    if chosen_id is not None and not any(choice.selected for choice in choices):
        gone = next((copy for copy in copies if copy.id == chosen_id), None)
        choices.append(_choice(CopyRead.of(gone), str(gone.id), True, " (missing)") if gone is not None else
                       CopyChoice(str(chosen_id), f"Copy {chosen_id} (not one of this model's)", "", True))
    return choices if len(choices) > 1 else []


def marks(models) -> dict[int, dict]:
    """Each card's mark (``_mark.html``): model id -> verdict and reason, computed once for the whole page."""
    return preflight.marks(current_app, list(models))


def _default_choice(model, default, *, selected: bool) -> CopyChoice:
    if default is not None:
        return _choice(CopyRead.of(default), "", selected, " (default, missing)" if default.missing else " (default)")
    return CopyChoice("", "The model's files (default)", model.cache_path or "the HF cache's snapshot of its repo",
                      selected)


def _choice(copy: CopyRead, value: str, selected: bool, suffix: str = "") -> CopyChoice:
    return CopyChoice(value, f"{copy.text}{suffix}", f"{copy.where}\n{copy.path}", selected)


def _refused(model, asked: int | None, messages: list[str], about: str):
    return render_template(SECTION, model=model, preflight=None, preflight_errors=messages, preflight_errors_about=about,
                           copy_choices=copy_choices(model, asked)), 422


def _asked_copy(value: str | None) -> int | None:
    """The copy id sent, as far as it is one (to keep it selected while the section says what is wrong)."""
    try:
        return int(value) if value is not None and int(value) > 0 else None
    except ValueError:
        return None


def _saved_config(model) -> dict:
    try:
        config = json.loads(model.load_config) if model.load_config else {}
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}
