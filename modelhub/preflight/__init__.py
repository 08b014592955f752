"""Preflight: will a model load here, with this load_config, before anything loads (reads metadata only).

``check`` answers in full (devices, terms, verdict, a config that would fit), ``marks`` gives each card
its verdict fast, ``predict_peak`` is what a run records at its start to calibrate against its measured
peak. No torch, no transformers: safetensors headers, config.json and this host's facts.
"""

from modelhub.preflight.host import forget as forget_host_facts
from modelhub.preflight.service import check, marks, predict_peak

__all__ = ["check", "forget_host_facts", "marks", "predict_peak"]
