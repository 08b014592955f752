// inventory: filled in by issue 16.
