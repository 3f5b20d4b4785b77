"""The built-in OCI runtime (``pycontainers-runtime``), runc-compatible.

Start latency matters here: this package is imported once per container start, so
nothing in it may import pydantic, httpx, dbus-next or asyncio on the start path.
"""
