"""modelhub: a self-hosted registry and loader for Hugging Face causal language models."""

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):
    # `from modelhub import hookimpl` is how a plugin marks its hooks. Imported on first use, not here:
    # `modelhub --version` then imports nothing but the version (no pluggy).
    if name == "hookimpl":
        from modelhub.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'modelhub' has no attribute {name!r}")
