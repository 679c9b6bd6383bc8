"""The read-only HTTP API, the dashboard pages and the health endpoints (``driftline ui``,
or ``driftline run`` with ``http.port``). ``http.py`` is the only module that imports
Starlette, ``server.py`` the only one that imports uvicorn."""
