"""Preflight: will a model load here, with this load_config, before anything loads (reads metadata only)."""
