"""`mcr serve`: a small OpenAI-compatible server over our runtime, with cross-request cache reuse.

:mod:`.protocol` is the wire format, :mod:`.pool` the session pool (prefix
routing, bounded queue), :mod:`.app` the FastAPI app and the command.
"""
