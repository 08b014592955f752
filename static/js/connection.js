// connection: filled in by issue 16.
