"""Export and import carry the copy of the files each run read (``copy_path``: a folder, or a GGUF file
such as an Ollama blob), so a report says which quantization a verdict was for; a file without it (from
before) still imports."""

import json
from datetime import UTC, datetime, timedelta

from modelhub.extensions import db
from modelhub.models import LoadAttempt, Measurement
from tests.exchange.conftest import export_text, import_text, register

NAME = "bartowski/Llama-3.2-1B-Instruct-GGUF"
GGUF = "/home/me/.lmstudio/models/bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf"
BLOB = "/home/me/.ollama/models/blobs/sha256-" + "ab" * 32
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def run(table, model, minutes: int, outcome: str, **columns):
    extra = {"previous_status": "unknown"} if table is LoadAttempt else {}
    db.session.add(table(model_id=model.id, started_at=T0 + timedelta(minutes=minutes), outcome=outcome,
                         finished_at=T0 + timedelta(minutes=minutes + 1), **extra, **columns))


def recorded(app) -> None:
    with app.app_context():
        model = register(NAME)
        run(LoadAttempt, model, 0, "success", copy_path=GGUF)
        run(LoadAttempt, model, 2, "failure")  # recorded before copies could be chosen
        run(Measurement, model, 4, "success", copy_path=BLOB, results={})
        db.session.commit()


def copy_paths(app) -> tuple[list, list]:
    with app.app_context():
        attempts = db.session.scalars(db.select(LoadAttempt.copy_path).order_by(LoadAttempt.started_at)).all()
        measurements = db.session.scalars(db.select(Measurement.copy_path)).all()
        return attempts, measurements


def test_each_run_names_the_copy_it_read_and_an_import_keeps_it(app, other_app):
    recorded(app)
    exported = export_text(app)
    (entry,) = json.loads(exported)["models"]
    assert [a["copy_path"] for a in entry["attempts"]] == [GGUF, None]
    assert [m["copy_path"] for m in entry["measurements"]] == [BLOB]

    import_text(other_app, exported)
    assert copy_paths(other_app) == ([GGUF, None], [BLOB])
    assert export_text(other_app) == exported


def test_a_document_from_before_copy_paths_imports(app, other_app):
    recorded(app)
    document = json.loads(export_text(app))
    for run in document["models"][0]["attempts"] + document["models"][0]["measurements"]:
        del run["copy_path"]
    import_text(other_app, json.dumps(document))
    assert copy_paths(other_app) == ([None, None], [None])
