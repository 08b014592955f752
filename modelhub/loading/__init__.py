"""Loading models: the worker process, the plugin pipeline that builds from_pretrained kwargs, and the
server-side supervisor that runs workers and records every attempt."""
