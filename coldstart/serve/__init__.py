"""`coldstart serve`: the HTTP API over a model folder (DESIGN.md §7), with micro-batched adaptation and the
onboarding page. Needs the `serve` extra (`pip install "coldstart-rec[serve]"`: FastAPI, uvicorn); nothing outside
this package imports it.

    app.py       create_app(model_dir): the routes, the model of each request, /reload and SIGHUP, error handlers
    schemas.py   the JSON bodies (pydantic): what is validated, and what /openapi.json describes
    inputs.py    request bodies -> recommender frames (titles, unknown items, anonymous ids) -> response bodies
    batching.py  MicroBatcher: concurrent single-user requests adapted and scored in one batched call
    guards.py    the bearer token, the body size limit, no open address without a token
    launch.py    serve(...): uvicorn, one process or several
    static/      the onboarding page (index.html at /), when present
"""
from .app import create_app
from .launch import serve

__all__ = ["create_app", "serve"]
