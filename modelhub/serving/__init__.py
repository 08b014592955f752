"""How modelhub serves HTTP: a gunicorn worker that reads whole requests before a thread runs the app."""
