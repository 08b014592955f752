"""The README followed as a stranger would: every command of its ```sh blocks, in the order it gives them,
against one running server and one registry, works as written (the set-up lines and ``serve`` itself
are covered by the packaging tests, which install the built wheel into fresh venvs)."""

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.discovery.trees import add_hub_repo, read_files
from tests.support import MODELHUB, LiveServer

README = Path(__file__).resolve().parent.parent / "README.md"
DEFAULT_URL = "http://127.0.0.1:5000"
DEFAULT_HOME = "~/.local/share/modelhub"
pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """Every command line of the README's ```sh blocks, in order, without its trailing comment."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    return [re.sub(r"\s{2,}#.*$", "", line) for line in lines]


def _is_set_up(command: str) -> bool:
    return command.startswith("python3.11 -m venv") or command.endswith("modelhub serve")


@pytest.fixture
def hub_cache(tmp_path, tiny_models):
    """The README's example models, as tiny Llamas in a Hugging Face cache (the hub is offline here)."""
    cache = tmp_path / "hf-hub"
    for repo_id in ("Qwen/Qwen2.5-0.5B-Instruct", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "microsoft/phi-2"):
        add_hub_repo(cache, repo_id, read_files(tiny_models["llama"]))
    return cache


def test_the_set_up_commands_are_the_ones_ci_and_a_newcomer_run():
    commands = [c for c in readme_commands() if _is_set_up(c)]
    assert commands[0] == 'python3.11 -m venv .venv && .venv/bin/pip install ".[ml]" && .venv/bin/modelhub serve'
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (README.parent / ".ci" / "run").read_text()


def test_every_command_works_in_the_order_given(tmp_path, database_url, hub_cache):
    env = {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "MODELHUB_SECONDARY_CACHE": ""}
    server = LiveServer(tmp_path / "home", database_url, env=env)
    server.start()
    shell_env = {**server.env, "MODELHUB_HOME": str(server.home)}
    workdir = tmp_path / "work"  # where the stranger's shell is: export writes registry.json here
    workdir.mkdir()
    try:
        for command in readme_commands():
            if _is_set_up(command) or (command.startswith("sqlite3 ") and not database_url.startswith("sqlite")):
                continue
            command = _localized(command, server)
            output = _run(command, shell_env, workdir)
            if command.startswith("curl "):
                _check_answer(command, output, server)
    finally:
        server.stop()


def _localized(command: str, server: LiveServer) -> str:
    modelhub = Path(MODELHUB)
    command = re.sub(r"(^|&& |\| )(\.venv/bin/)?modelhub ", lambda m: f"{m.group(1)}{modelhub} ", command)
    return command.replace(DEFAULT_URL, server.url).replace(DEFAULT_HOME, str(server.home))


def _run(command: str, env: dict, cwd: Path) -> str:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _check_answer(command: str, output: str, server: LiveServer) -> None:
    answer = json.loads(output)
    assert not ({"code", "status", "message"} <= set(answer) and answer["code"] >= 400), f"{command}\n{answer}"
    if command.endswith("/load"):
        # A person reads the attempts until the outcome shows; so does the test, before the next line.
        _wait_until_loaded(command.split()[-1].removesuffix("/load"))


def _wait_until_loaded(model_url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        attempts = requests.get(f"{model_url}/attempts", timeout=5).json()
        if attempts["items"] and attempts["items"][0]["outcome"] != "running":
            assert attempts["items"][0]["outcome"] == "success", attempts["items"][0]
            return
        time.sleep(0.5)
    raise AssertionError(f"{model_url} still loading after 120 s")
