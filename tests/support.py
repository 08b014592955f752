"""Helpers shared by the tests (not fixtures): a real server process on loopback."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

MODELHUB = str(Path(sys.executable).with_name("modelhub"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """Runs ``modelhub --data-dir HOME serve --port PORT`` and waits until it answers."""

    def __init__(
        self,
        home: Path,
        database_url: str | None = None,
        executable: str = MODELHUB,
        env: dict | None = None,
        cwd: Path | None = None,
        inherit_env: bool = True,
        serve_args: tuple[str, ...] = (),
    ):
        self.home = home
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [executable, "--data-dir", str(home), "serve", "--port", str(self.port), *serve_args]
        self.env = {**(os.environ if inherit_env else {}), **(env or {})}
        if database_url and not database_url.startswith("sqlite"):
            self.env["MODELHUB_DATABASE_URL"] = database_url
            self.database_url = database_url
        else:
            self.database_url = f"sqlite:///{home / 'models.db'}"  # SQLite: models.db in its data dir
        self.log_path = home / "server.log"
        self.process = None

    def start(self, timeout: float = 30) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
            start_new_session=True,  # its own process group, so a test can kill the server and its children
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log}")
            try:
                if requests.get(f"{self.url}/api/models", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def head_revision() -> str:
    """The newest migration in migrations/ (what a fresh or upgraded database must be at)."""
    from alembic.script import ScriptDirectory

    from modelhub.database import migrations_dir

    return ScriptDirectory(migrations_dir()).get_current_head()
