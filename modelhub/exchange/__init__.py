"""Export and import: the whole registry as one versioned JSON document, and a single model's
compatibility report. See docs/exchange.md for the format and the merge rules."""
