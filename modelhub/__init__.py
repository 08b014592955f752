"""modelhub: a self-hosted registry and loader for Hugging Face causal language models."""

from modelhub.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
