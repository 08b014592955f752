"""The JSON API (flask-smorest blueprints) under ``/api``."""
