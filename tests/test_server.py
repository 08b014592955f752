"""A real ``modelhub serve`` on loopback: start-up messages, the README's curl examples run as written,
and bad input over real sockets never reaching a 5xx."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

README = Path(__file__).resolve().parent.parent / "README.md"
pytestmark = pytest.mark.slow


def readme_commands(prefix: str, section: str = "## The REST API") -> list[str]:
    """The lines of the ```sh blocks of one README section that start with ``prefix``."""
    text = README.read_text().split(section, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith(prefix)]


def run_shell(command: str) -> str:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def test_start_up_prints_the_url_and_the_database(live_server, database_url):
    log = live_server.log
    assert f"serving on http://127.0.0.1:{live_server.port}/" in log
    expected = str(live_server.home / "models.db") if database_url.startswith("sqlite") else "postgresql+psycopg://"
    assert f"Registry database: {expected}" in log


def test_readme_curl_examples_work_as_written(live_server, database_url):
    curls = readme_commands("curl ")
    assert len(curls) == 4
    outputs = [json.loads(run_shell(c.replace("http://127.0.0.1:5000", live_server.url))) for c in curls]

    registered, configured, measured, fetched = outputs
    assert registered["model_name"] == "microsoft/phi-2"
    assert configured["compatibility_status"] == "degraded"
    assert configured["compatibility_notes"] == "Works after restart"
    assert configured["load_config"] == '{"attn_implementation": "eager"}'
    assert [measured[k] for k in ("mmlu_score", "humaneval_score", "max_throughput_tokens_sec", "avg_latency_ms")] == [
        72.5, 45.2, 38.7, 125.3,
    ]
    assert fetched == measured

    if database_url.startswith("sqlite"):
        (query,) = readme_commands("sqlite3 ")
        output = run_shell(query.replace("~/.local/share/modelhub", str(live_server.home)))
        assert output == 'microsoft/phi-2|{"attn_implementation": "eager"}\n'


def test_bad_input_over_the_wire_is_4xx_and_changes_nothing(live_server):
    base = f"{live_server.url}/api/models"
    requests.post(base, json={"model_name": "gpt2", "mmlu_score": 30.0}, timeout=5)
    before = requests.get(f"{base}/gpt2", timeout=5).json()
    json_header = {"Content-Type": "application/json"}
    attempts = [
        requests.patch(f"{base}/gpt2/metadata", data='{"mmlu_score": NaN}', headers=json_header, timeout=5),
        requests.patch(f"{base}/gpt2/config", data="[" * 200_000, headers=json_header, timeout=5),
        requests.patch(f"{base}/gpt2/config", data=b'{"compatibility_notes": "' + b"x" * 3_000_000 + b'"}',
                       headers=json_header, timeout=10),
        requests.patch(f"{base}/gpt2", json={"config": {"compatibility_status": "compatible"},
                                             "metadata": {"mmlu_score": 150}}, timeout=5),
        requests.patch(f"{base}/gpt2/config", json={"compatibility_status": "testing"},
                       headers={"If-Match": '"0.0"'}, timeout=5),
    ]
    assert [r.status_code for r in attempts] == [422, 400, 413, 422, 412]
    assert all(r.json()["message"] for r in attempts)
    assert requests.get(f"{base}/gpt2", timeout=5).json() == before


def test_the_page_and_its_stylesheet_are_served(live_server):
    requests.post(f"{live_server.url}/api/models", json={"model_name": "gpt2"}, timeout=5)
    page = requests.get(live_server.url + "/", timeout=5)
    assert page.status_code == 200
    assert "gpt2" in page.text
    css = re.search(r'href="([^"]+\.css)"', page.text).group(1)
    assert requests.get(live_server.url + css, timeout=5).status_code == 200
