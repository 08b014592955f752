"""Measurements of a loaded model: latency, throughput, perplexity and memory (see ``metrics``)."""
