"""``modelhub export`` and ``modelhub import``."""

import json

import pytest
from click.testing import CliRunner

from modelhub.cli import main
from tests.exchange.conftest import fill, make_app


@pytest.fixture
def run(tmp_path, monkeypatch):
    def invoke(home, *args, input=None):
        monkeypatch.setenv("MODELHUB_HOME", str(home))
        return CliRunner().invoke(main, ["--data-dir", str(home), *args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def source(tmp_path):
    home = tmp_path / "source"
    fill(make_app(f"sqlite:///{home / 'models.db'}", home))
    return home


def test_export_then_import_elsewhere(run, source, tmp_path):
    exported = run(source, "export")
    assert exported.exit_code == 0
    assert json.loads(exported.output)["format"] == "modelhub-registry"
    path = tmp_path / "registry.json"
    written = run(source, "export", "-o", str(path))
    assert written.output == f"Exported 4 model(s), 3 load attempt(s) and 2 measurement(s) to {path}.\n"
    assert path.read_text() == exported.output

    target = tmp_path / "target"
    dry = run(target, "import", "--dry-run", str(path))
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[:3] == [
        "Dry run: nothing was changed. This import would:",
        "  4 model(s) added, 0 updated, 0 unchanged; 3 load attempt(s), 2 measurement(s), 4 load_config "
        "version(s) and 0 auto-configure run(s) added.",
        "+ gpt2 (new)",
    ]
    assert "No models registered" in run(target, "list").output

    applied = run(target, "import", str(path))
    assert applied.output.startswith("Imported:\n  4 model(s) added")
    assert run(target, "export").output == exported.output
    again = run(target, "import", "--json", "-", input=path.read_text())
    assert json.loads(again.output)["summary"]["models_unchanged"] == 4


def test_conflicts_are_listed_and_replace_takes_the_files_values(run, source, tmp_path):
    path = tmp_path / "registry.json"
    run(source, "export", "-o", str(path))
    target = tmp_path / "target"
    run(target, "add", "gpt2", "--notes", "Mine.", "--status", "incompatible")
    document = json.loads(path.read_text())
    document["models"][0]["compatibility_notes"] = "Theirs."
    path.write_text(json.dumps(document))

    kept = run(target, "import", str(path))
    assert "  1 conflict(s): this registry's value was kept (--on-conflict)." in kept.output
    assert "    conflict compatibility_notes: here 'Mine.', file 'Theirs.'; kept local" in kept.output
    replaced = run(target, "import", "--on-conflict", "replace", str(path))
    assert "    compatibility_notes: 'Mine.' -> 'Theirs.'" in replaced.output


def test_a_bad_file_changes_nothing_and_says_why(run, source, tmp_path):
    path = tmp_path / "registry.json"
    run(source, "export", "-o", str(path))
    document = json.loads(path.read_text())
    document["models"][3]["mmlu_score"] = 101
    document["models"][0]["attempts"] = "none"
    path.write_text(json.dumps(document))
    target = tmp_path / "target"

    result = run(target, "import", str(path))

    assert result.exit_code == 1
    assert f"Error: {path} cannot be imported; nothing was changed:" in result.output
    assert "  models.3.mmlu_score: Must be greater than or equal to 0 and less than or equal to 100." in result.output
    assert "  models.0.attempts: Not a valid list." in result.output
    assert "No models registered" in run(target, "list").output
    assert run(target, "import", str(tmp_path / "missing.json")).exit_code == 2


def test_report_export(run, source, tmp_path):
    result = run(source, "export", "--report", "microsoft/phi-2")
    assert json.loads(result.output)["format"] == "modelhub-compatibility-report"
    refused = run(source, "export", "--report", "gpt2")
    assert refused.exit_code == 1 and "never loaded successfully" in refused.output
