"""The callback server: an ASGI app and the state it shares between workers."""
