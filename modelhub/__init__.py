"""modelhub: a self-hosted registry and loader for Hugging Face causal language models."""

__version__ = "0.1.0"
