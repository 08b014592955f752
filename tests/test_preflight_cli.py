"""``modelhub preflight NAME``: each device's terms, the verdict and what to do, as text or JSON; the exit
status a script reads (0 fits or tight, 1 will not fit or cannot load, 2 bad input, 3 unknown)."""

import json

import pytest
from click.testing import CliRunner

from modelhub.cli import main
from tests.discovery.test_scan_api import scan
from tests.header_only import build_llama
from tests.library_machine import NAME, library_machine, scanned_copies  # noqa: F401  (a fixture)

GIB = 2**30


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The command line with a 4 GiB worker memory limit: the same verdicts whatever this host has free."""
    monkeypatch.setenv("MODELHUB_WORKER_MEMORY_LIMIT", str(4 * GIB))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["--data-dir", str(tmp_path / "data"), *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def llama(run, tiny_models):
    assert run("add", "tiny/llama", "--cache-location", "custom", "--cache-path", str(tiny_models["llama"])).exit_code == 0
    return "tiny/llama"


def test_a_model_that_fits_shows_each_term_and_exits_0(run, llama):
    result = run("preflight", llama)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("tiny/llama: fits: Needs ")
    assert lines[1] == "  for its saved load_config (system defaults), batch 1, 256 tokens of context"
    assert any(line.startswith("  CPU RAM: needs ") and "(4.0 GiB available, " in line and "% headroom)" in line for line in lines)
    for term in ("weights", "KV cache", "activations", "overhead"):
        assert any(line.strip().startswith(term) for line in lines), term
    assert "  calibration: none yet (no load measured on this host)" in lines


def test_a_config_not_saved_and_a_context(run, llama):
    result = run("preflight", llama, "--config", '{"dtype": "float16"}', "--context", "64")
    assert result.exit_code == 0, result.output
    assert 'for the load_config given ({"dtype": "float16"}), batch 1, 64 tokens of context' in result.output
    assert "float16" in result.output


def test_json_is_the_apis_answer(run, llama):
    result = run("preflight", llama, "--json", "--context", "128")
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert (body["model_name"], body["verdict"], body["config_source"], body["context_tokens"]) == (
        llama, "fits", "saved", 128)
    assert {term["name"] for term in body["devices"][0]["terms"]} >= {"weights", "kv_cache", "activations", "overhead"}


def test_a_model_that_will_not_fit_offers_a_config_and_exits_1(run, tmp_path, monkeypatch):
    folder = build_llama(tmp_path / "llama-0.8b")
    run("add", "big/llama", "--cache-location", "custom", "--cache-path", str(folder))
    needed = json.loads(run("preflight", "big/llama", "--json").output)["total_bytes"]
    monkeypatch.setenv("MODELHUB_WORKER_MEMORY_LIMIT", str(int(needed * 0.9)))
    result = run("preflight", "big/llama")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("big/llama: won't fit: Needs ")
    assert " short)" in result.output
    assert "  a config that would fit: " in result.output
    offered = next(line for line in result.output.splitlines() if line.startswith("    --config '"))
    again = run("preflight", "big/llama", "--config", offered.strip()[len("--config '"):-1])
    assert again.exit_code == 0, again.output  # the config offered fits (or is tight)


def test_a_model_without_local_files_is_unknown_exit_3(run):
    run("add", "acme/elsewhere")
    result = run("preflight", "acme/elsewhere")
    assert result.exit_code == 3
    assert result.output.startswith("acme/elsewhere: unknown: ")


@pytest.mark.parametrize("args, message", [
    (("--config", "{not json"), "  --config: Invalid JSON"),
    (("--config", '{"flash": true}'), "  --config: Unknown key 'flash'. Known keys: "),
    (("--config", '{"dtype": "float8"}'), "  --config: dtype: Must be one of: "),
    (("--config", '{"dtype": "float16", "dtype": "float32"}'), "the key 'dtype' appears twice"),
    (("--context", "0"), "  --context: Must be greater than or equal to 1"),
    (("--context", str(10**12)), "  --context: Must be greater than or equal to 1 and less than or equal to"),
])
def test_bad_input_exits_2_naming_the_option(run, llama, args, message):
    result = run("preflight", llama, *args)
    assert result.exit_code == 2
    assert "Error: invalid options:" in result.output
    assert message in result.output


def test_an_unknown_model_exits_2(run):
    result = run("preflight", "acme/nothing")
    assert result.exit_code == 2
    assert "No model named 'acme/nothing' in the registry." in result.output


# Which copy: a model found in three libraries (tests/library_machine.py), one copy checked at a time.


@pytest.fixture
def scanned(run, app, client, library_machine, monkeypatch):  # noqa: F811
    """The command line reading the registry the scan wrote: the model's copies by library."""
    copies = scanned_copies(client)
    monkeypatch.setenv("MODELHUB_DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    return copies


def test_copy_checks_that_copy_and_says_which(run, scanned):
    primary, gguf = scanned["huggingface"], scanned["lmstudio"]
    lines = run("preflight", NAME).output.splitlines()
    assert lines[2] == f"  copy {primary['id']}: safetensors, HF cache ({primary['path']})"
    assert not any("dequantized" in line for line in lines)

    result = run("preflight", NAME, "--copy", str(gguf["id"]))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{NAME}: fits: ")
    assert lines[2] == f"  copy {gguf['id']}: GGUF Q4_0, LM Studio ({gguf['path']})"
    assert any("dequantized from GGUF Q4_0 to float32" in line for line in lines), result.output

    body = json.loads(run("preflight", NAME, "--copy", str(scanned["ollama"]["id"]), "--json").output)
    assert (body["copy"]["id"], body["copy"]["text"]) == (scanned["ollama"]["id"], "GGUF Q8_0, Ollama")
    assert body["metadata"]["source"] == f"GGUF file: {scanned['ollama']['path']}"


def test_a_copy_that_is_none_of_the_models_or_missing_exits_2(run, scanned, client, library_machine):  # noqa: F811
    ids = ", ".join(str(copy_id) for copy_id in sorted(copy["id"] for copy in scanned.values()))
    result = run("preflight", NAME, "--copy", "999999")
    assert result.exit_code == 2
    assert f"Error: {NAME!r} has no copy 999999; its copies (GET /api/models/{NAME}/copies): {ids}." in result.output
    result = run("preflight", NAME, "--copy", "0")
    assert result.exit_code == 2 and "Invalid value for '--copy'" in result.output

    library_machine.blob.unlink()
    assert scan(client)["state"] == "finished"
    result = run("preflight", NAME, "--copy", str(scanned["ollama"]["id"]))
    assert result.exit_code == 2
    assert f"Copy {scanned['ollama']['id']} of {NAME!r} ({scanned['ollama']['path']}) is missing" in result.output
