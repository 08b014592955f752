"""A real ``modelhub serve --host 0.0.0.0`` (every interface): it refuses to start without a token, says
at start-up that writes are token-protected, and over real sockets answers 401 without the token, 403 to
cross-site writes and 400 to foreign Host names — never a 5xx."""

import os
import socket
import subprocess

import pytest
import requests

from tests.support import MODELHUB, LiveServer, free_port

pytestmark = pytest.mark.slow
TOKEN = "live-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def lan_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.255", 9))
            address = sock.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


@pytest.fixture
def exposed(database_url, tmp_path):
    server = LiveServer(tmp_path / "home", database_url, env={"MODELHUB_API_TOKEN": TOKEN})
    server.command += ["--host", "0.0.0.0"]
    server.start()
    yield server
    server.stop()


def test_without_a_token_it_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MODELHUB_API_TOKEN"}
    port = free_port()
    result = subprocess.run([MODELHUB, "--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Binding 0.0.0.0 makes modelhub reachable from other machines")
    assert "export MODELHUB_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" in result.stderr
    assert "serving on" not in result.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_start_up_says_writes_are_token_protected(exposed):
    log = exposed.log
    assert f"serving on http://0.0.0.0:{exposed.port}/" in log
    assert (f"WRITES ARE TOKEN-PROTECTED: send 'Authorization: Bearer $MODELHUB_API_TOKEN'; in a browser, sign in at "
            f"http://0.0.0.0:{exposed.port}/sign-in.") in log
    assert "Reads are open to anyone who can reach this address (MODELHUB_PROTECT_READS=1 to protect them)." in log
    assert "Plain HTTP: the token crosses the network unencrypted" in log
    assert TOKEN not in log


def test_writes_need_the_token_and_reads_do_not(exposed):
    bases = [exposed.url] + ([f"http://{lan_address()}:{exposed.port}"] if lan_address() else [])
    for number, base in enumerate(bases):
        name = f"org/model-{number}"
        refused = [
            requests.post(f"{base}/api/models", json={"model_name": name}, timeout=5),
            requests.post(f"{base}/api/models", json={"model_name": name}, headers={"Authorization": "Bearer nope"}, timeout=5),
            requests.post(f"{base}/scan", timeout=5),
        ]
        assert [r.status_code for r in refused] == [401, 401, 401]
        assert refused[0].json()["message"].startswith("Changes need the API token")
        assert requests.get(f"{base}/api/models/{name}", timeout=5).status_code == 404
        created = requests.post(f"{base}/api/models", json={"model_name": name}, headers=BEARER, timeout=5)
        assert created.status_code == 201
        assert requests.get(f"{base}/api/models/{name}", timeout=5).json()["model_name"] == name
        assert name in requests.get(f"{base}/", timeout=5).text


def test_the_browser_signs_in_with_a_cookie(exposed):
    session = requests.Session()
    assert session.post(f"{exposed.url}/sign-in", data={"token": TOKEN}, allow_redirects=False).status_code == 303
    same_origin = {"Origin": exposed.url, "Sec-Fetch-Site": "same-origin"}
    assert session.post(f"{exposed.url}/api/models", json={"model_name": "org/cookie"}, headers=same_origin,
                        timeout=5).status_code == 201
    cross = session.post(f"{exposed.url}/api/models", json={"model_name": "org/cross"},
                         headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, timeout=5)
    assert cross.status_code == 403


HOSTS = ["evil.example", "evil.example:80", "localhost.evil.example", "127.0.0.1.nip.io", "a" * 300, "local host",
         "localhost:abc", "[::1", "evil.example/x"]
ORIGINS = ["http://evil.example", "null", "http://localhost:1", "http://[::1", "http://localhost:99999", "garbage",
           "http://127.0.0.1.nip.io"]
SITES = ["cross-site", "same-site", "bogus"]


def over_the_wire_cases(server) -> list[tuple[str, requests.Response, int]]:
    """(what was sent, the answer, the status expected) for each Host/Origin/Sec-Fetch-Site case."""
    url, cases = server.url, []
    for host in HOSTS:
        for method, path in [("GET", "/"), ("GET", "/api/models"), ("POST", "/api/models")]:
            response = requests.request(method, url + path, headers={**BEARER, "Host": host}, timeout=5,
                                        json={"model_name": "org/evil"} if method == "POST" else None)
            cases.append((f"{method} {path} Host: {host[:30]}", response, 400))
    for origin in ORIGINS:
        for path in ["/api/models", "/scan"]:
            response = requests.post(url + path, headers={**BEARER, "Origin": origin}, json={"model_name": "org/evil"}, timeout=5)
            cases.append((f"POST {path} Origin: {origin}", response, 403))
    for site in SITES:
        for path in ["/api/models", "/scan", "/sign-in"]:
            response = requests.post(url + path, headers={**BEARER, "Sec-Fetch-Site": site}, json={"model_name": "org/evil"}, timeout=5)
            cases.append((f"POST {path} Sec-Fetch-Site: {site}", response, 403))
    return cases


def test_host_origin_and_fetch_site_over_the_wire(exposed):
    cases = over_the_wire_cases(exposed)
    assert len(cases) == 27 + 14 + 9
    wrong = [(sent, response.status_code) for sent, response, expected in cases if response.status_code != expected]
    assert wrong == []
    assert all(response.status_code < 500 for _, response, _ in cases)
    assert requests.get(f"{exposed.url}/api/models/org/evil", timeout=5).status_code == 404
    assert requests.get(f"{exposed.url}/api/scan", timeout=5).json()["state"] == "idle"
    allowed = [f"127.0.0.1:{exposed.port}", f"localhost:{exposed.port}", f"{socket.gethostname()}:{exposed.port}"]
    if lan_address():
        allowed.append(f"{lan_address()}:{exposed.port}")
    assert [requests.get(exposed.url + "/api/models", headers={"Host": h}, timeout=5).status_code for h in allowed] == [
        200] * len(allowed)
