"""Serving with gunicorn (a production WSGI server) instead of Flask's development server."""

import os
from collections.abc import Callable

from gunicorn.app.base import BaseApplication

from modelhub.app import create_app


class _Gunicorn(BaseApplication):
    def __init__(self, load_app: Callable, options: dict):
        self._load_app = load_app
        self._options = options
        super().__init__()

    def load_config(self):
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._load_app()


def _worker_app():
    # Each worker builds its own app (and its own database connections) after the fork; the schema
    # was brought up to date once, in the parent, before any worker started.
    app = create_app({"MODELHUB_AUTO_UPGRADE": False})
    # Served processes watch for loads whose web process died (gunicorn replaces a killed worker).
    app.extensions["modelhub.supervisor"].start_reaper()
    return app


def serve(host: str, port: int, *, workers: int = 1, threads: int = 8, load_app: Callable = _worker_app) -> None:
    """Run until interrupted. ``load_app`` is called in each worker process."""
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        # gthread, but requests are read whole in the main loop with deadlines: slow clients hold no thread.
        "worker_class": "modelhub.serving.worker.BufferingWorker",
        "accesslog": os.environ.get("MODELHUB_ACCESS_LOG") or None,
        "errorlog": "-",
        "loglevel": os.environ.get("MODELHUB_LOG_LEVEL", "info"),
        "timeout": 120,
        "graceful_timeout": 10,
        "keepalive": 5,
        # gunicorn 27's control socket defaults to ~/.gunicorn/gunicorn.ctl, one path shared by every
        # server of the user (a second modelhub would take it over); modelhub has no use for it.
        "control_socket_disable": True,
    }
    _Gunicorn(load_app, options).run()
