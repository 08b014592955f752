"""The ``modelhub`` command: add, list, db, --data-dir."""

import json
import sqlite3
import subprocess

import pytest
from click.testing import CliRunner

from modelhub.cli import main
from tests.support import MODELHUB, head_revision


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--data-dir", str(tmp_path / "data"), *args], catch_exceptions=False)

    return invoke


def test_add_then_list(run, tmp_path):
    added = run("add", "microsoft/phi-2", "--status", "degraded", "--load-config", '{"attn_implementation": "eager"}')
    assert added.exit_code == 0, added.output
    assert added.output == "Registered microsoft/phi-2 (primary).\n"
    run("add", "gpt2")

    listed = run("list")
    lines = listed.output.splitlines()
    assert lines[0].split() == ["MODEL", "STATUS", "LOCATION", "HF", "PATH"]
    assert lines[1].split() == ["gpt2", "unknown", "primary", "gpt2"]
    assert lines[2].split() == ["microsoft/phi-2", "degraded", "primary", "microsoft/phi-2"]

    with sqlite3.connect(tmp_path / "data" / "models.db") as connection:
        rows = connection.execute("SELECT model_name, load_config FROM modelregistry ORDER BY model_name").fetchall()
    assert rows == [("gpt2", None), ("microsoft/phi-2", '{"attn_implementation": "eager"}')]


def test_list_filters_and_json(run):
    run("add", "microsoft/phi-2", "--status", "degraded")
    run("add", "gpt2")
    result = run("list", "--status", "degraded", "--json")
    assert [m["model_name"] for m in json.loads(result.output)] == ["microsoft/phi-2"]


def test_list_on_an_empty_registry_says_what_to_do(run):
    assert "Add one with: modelhub add" in run("list").output


def test_list_with_no_match_says_the_filters_matched_nothing(run):
    run("add", "gpt2")
    result = run("list", "--status", "compatible", "--status", "degraded", "--search", "phi")
    assert result.exit_code == 0
    assert result.output == "No registered model matches status compatible or degraded and a name containing 'phi'.\n"


def test_list_refuses_an_unknown_status_and_lists_the_allowed_ones(run):
    result = run("list", "--status", "compatible", "--status", "nope")
    assert result.exit_code == 1
    assert "status 'nope': Must be one of: unknown, compatible, incompatible, degraded, testing." in result.output


def test_db_help_offers_only_the_commands_an_installed_modelhub_needs(run):
    shown = run("db", "--help").output
    commands = {line.split()[0] for line in shown.split("Commands:")[1].splitlines() if line.strip()}
    assert commands == {"current", "history", "upgrade", "downgrade"}
    assert "--directory" not in shown and "default is" not in shown


@pytest.mark.slow
def test_db_downgrade_asks_first_and_stays_down_until_upgraded(run, tmp_path):
    def db(*args, **kwargs):
        return subprocess.run([MODELHUB, "--data-dir", str(tmp_path), "db", *args], capture_output=True, text=True,
                              timeout=60, **kwargs)

    assert db("upgrade").returncode == 0
    assert "Aborted" in db("downgrade", input="n\n").stderr
    assert f"{head_revision()} (head)" in db("current").stdout
    assert db("downgrade", "--yes").returncode == 0
    assert "(head)" not in db("current").stdout  # the db commands do not upgrade first, unlike the others
    assert db("upgrade").returncode == 0
    assert f"{head_revision()} (head)" in db("current").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "../etc"], "model_name: Must look like a Hugging Face id"),
        (["add", "gpt2", "--load-config", "{bad"], "load_config: Invalid JSON: Expecting property name"),
        (["add", "gpt2", "--status", "fine"], "compatibility_status: Must be one of"),
    ],
)
def test_add_refuses_bad_input_with_the_field_named(run, args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "No models registered" in run("list").output


def test_add_twice_is_refused(run):
    run("add", "gpt2")
    result = run("add", "gpt2")
    assert result.exit_code == 1
    assert "A model named 'gpt2' is already registered." in result.output


def test_list_refuses_an_unknown_sort_column(run):
    result = run("list", "--sort", "password")
    assert result.exit_code == 1
    assert "sort" in result.output


def test_db_commands_report_the_current_revision(tmp_path):
    subprocess.run([MODELHUB, "--data-dir", str(tmp_path), "add", "gpt2"], check=True, capture_output=True, timeout=60)
    result = subprocess.run(
        [MODELHUB, "--data-dir", str(tmp_path), "db", "current"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"{head_revision()} (head)" in result.stdout


def test_version_and_help(run):
    assert run("--version").output.startswith("modelhub, version ")
    assert "serve" in run("--help").output


@pytest.mark.slow
def test_bench_measures_a_model(tmp_path, tiny_models):
    home = str(tmp_path / "cli-home")
    subprocess.run([MODELHUB, "--data-dir", home, "add", "tiny/llama", "--cache-location", "custom",
                    "--cache-path", str(tiny_models["llama"])], check=True, capture_output=True, timeout=60)
    result = subprocess.run([MODELHUB, "--data-dir", home, "bench", "tiny/llama"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tiny/llama: TTFT ")
    assert "tokens/s at batch 1" in result.stdout and "perplexity" in result.stdout
    listed = json.loads(subprocess.run([MODELHUB, "--data-dir", home, "list", "--json"], capture_output=True,
                                       text=True, timeout=60).stdout)
    assert listed[0]["metric_sources"]["max_throughput_tokens_sec"]["source"] == "measured"


def test_bench_of_an_unknown_model_says_so(run):
    result = run("bench", "nope/nothing")
    assert result.exit_code == 1
    assert "No model named 'nope/nothing'" in result.output
