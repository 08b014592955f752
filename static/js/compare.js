// compare: filled in by issue 16.
