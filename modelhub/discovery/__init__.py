"""Discovering models on disk: the primary Hugging Face cache, secondary roots and custom folders."""
