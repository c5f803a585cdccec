"""`coldstart serve`: check the settings, load and verify the model, run uvicorn (graceful shutdown is uvicorn's).

With `workers` > 1 uvicorn starts that many processes, each building its own app from the settings passed in the
environment (`app_from_env`); SIGHUP then makes uvicorn restart them, each loading the model folder afresh.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI

from .app import create_app, load_served
from .guards import check_bind

SETTINGS = "COLDSTART_SERVE_SETTINGS"  # the app's settings, for worker processes


def serve(model: Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, token: str | None = None,
          batching: bool = True, max_body: int = 1 << 20, log_level: str = "info") -> None:
    """Serve the model folder over HTTP until interrupted; a ValueError for unsafe settings or a bad model folder,
    before anything listens."""
    import uvicorn
    check_bind(host, token)
    settings = {"model": str(model), "token": token, "batching": batching, "max_body": max_body}
    if workers == 1:
        uvicorn.run(create_app(**settings), host=host, port=port, log_level=log_level)
        return
    load_served(model)  # a model that does not load or verify stops here, not in each worker
    os.environ[SETTINGS] = json.dumps(settings)
    uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


def app_from_env() -> FastAPI:
    """A worker process's app, from the settings `serve` put in the environment."""
    return create_app(**json.loads(os.environ[SETTINGS]))
