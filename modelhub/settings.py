"""Configuration: where the data lives and which database to use.

Precedence, highest first: values passed to ``create_app(test_config)``, environment variables
(``MODELHUB_HOME``, ``MODELHUB_DATABASE_URL``, ...), then the defaults below.
"""

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DATABASE_FILENAME = "models.db"


def default_data_dir() -> Path:
    """``$MODELHUB_HOME``, else ``$XDG_DATA_HOME/modelhub``, else ``~/.local/share/modelhub``."""
    if os.environ.get("MODELHUB_HOME"):
        return Path(os.environ["MODELHUB_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "modelhub"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DATABASE_FILENAME).resolve()}"


_SIZE_UNITS = {"": 1, "B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_size(text: str | None) -> int | None:
    """``"6GiB"``, ``"512MB"`` or a number of bytes; None when unset. A value that is none of these is a
    mistake in the service's environment: refused at start, naming the variable."""
    if not text or not text.strip():
        return None
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = found.group(2).upper() if found else None
    if not found or unit not in _SIZE_UNITS or float(found.group(1)) <= 0:
        raise ValueError(f"MODELHUB_WORKER_MEMORY_LIMIT={text!r}: give a size such as 6GiB, 512MiB or a number of bytes.")
    return int(float(found.group(1)) * _SIZE_UNITS[unit])


def base_config() -> dict:
    """The configuration the app starts from before ``test_config`` is applied."""
    data_dir = default_data_dir()
    return {
        "MODELHUB_HOME": str(data_dir),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("MODELHUB_DATABASE_URL") or sqlite_url(data_dir),
        # Seconds a write waits for another writer before the request answers 503.
        "MODELHUB_BUSY_TIMEOUT": float(os.environ.get("MODELHUB_BUSY_TIMEOUT", "5")),
        "MODELHUB_AUTO_UPGRADE": os.environ.get("MODELHUB_AUTO_UPGRADE", "1") != "0",
        # Loading: how many models may be loaded at once (loading one more unloads the oldest), how long
        # a load may take, and whether trust_remote_code may be used (off: it runs the model's own code).
        "MODELHUB_MAX_LOADED": int(os.environ.get("MODELHUB_MAX_LOADED", "1")),
        "MODELHUB_LOAD_TIMEOUT": float(os.environ.get("MODELHUB_LOAD_TIMEOUT", "900")),
        "MODELHUB_ALLOW_REMOTE_CODE": os.environ.get("MODELHUB_ALLOW_REMOTE_CODE") == "1",
        # CPU threads a load worker's torch may use: all cores but one, kept for the web server.
        # This host's name in a registry several hosts share (results are kept per host and environment):
        # the machine's host name unless set, e.g. when containers get a new one at every start.
        "MODELHUB_HOST_NAME": os.environ.get("MODELHUB_HOST_NAME") or None,
        # The most memory a load worker may allocate (bytes, or "6GiB"/"512MiB"): a load that needs more
        # fails as out of memory instead of pushing the host into swap or the kernel's OOM killer. Preflight
        # counts it as this host's RAM. Unset: no limit beyond the machine's.
        "MODELHUB_WORKER_MEMORY_LIMIT": parse_size(os.environ.get("MODELHUB_WORKER_MEMORY_LIMIT")),
        "MODELHUB_WORKER_THREADS": int(os.environ.get("MODELHUB_WORKER_THREADS") or max(1, (os.cpu_count() or 1) - 1)),
        # Browser surface (modelhub/security.py, docs/security.md): the address `modelhub serve` bound,
        # extra Host names to answer to (behind a proxy, a LAN name), and the bearer token that guards
        # writes (required to bind beyond loopback); MODELHUB_PROTECT_READS=1 makes reads need it too.
        "MODELHUB_BIND_HOST": os.environ.get("MODELHUB_BIND_HOST") or DEFAULT_HOST,
        "MODELHUB_ALLOWED_HOSTS": [h.strip() for h in os.environ.get("MODELHUB_ALLOWED_HOSTS", "").split(",") if h.strip()],
        "MODELHUB_API_TOKEN": os.environ.get("MODELHUB_API_TOKEN") or None,
        "MODELHUB_PROTECT_READS": os.environ.get("MODELHUB_PROTECT_READS") == "1",
        # Registry requests are small; anything bigger is a mistake or an attack (413).
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "API_TITLE": "modelhub",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "JSON_SORT_KEYS": False,
    }


def describe_database(url: str) -> str:
    """A human-readable location for start-up messages and the page footer (no passwords)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)
