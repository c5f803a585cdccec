"""The ASGI app: `create_app(model_dir)` -> a FastAPI app serving the model (docs/architecture.md, DESIGN.md §7).

Each request takes the model of the moment once (`current`) and uses it to the end, so `POST /reload` (or SIGHUP)
can swap in a new model, loaded and checksum-verified first, while requests in flight finish on the old one.
Bad input gets a 4xx JSON naming the field, never a 5xx or a traceback.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..interview import NEW_USER
from ..persist import read_metadata
from ..recommender import ColdStartRecommender
from ..titles import search_items
from .batching import MicroBatcher, NewUser, recommend_new_users
from .guards import BodyLimit, TokenGuard
from .inputs import answer_pairs, answers_frame, anonymous_id, invalid, listing, support_of
from .schemas import (BatchRecommendations, BatchRequest, Health, InterviewRequest, Items, Questions,
                      Recommendations, RecommendRequest)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PLACEHOLDER = ("<!doctype html><title>coldstart</title><h1>coldstart</h1><p>The API is up: see "
               "<a href=\"/docs\">/docs</a> and <a href=\"/openapi.json\">/openapi.json</a>.</p>")
router = APIRouter()
_reloading = threading.Lock()  # one reload at a time


@dataclass(frozen=True)
class Served:
    """A loaded, verified model and what /health says of it (`model_info`)."""
    rec: ColdStartRecommender
    info: dict[str, Any]


def create_app(model: str | Path, *, token: str | None = None, batching: bool = True, max_wait: float = 0.005,
               max_batch: int = 64, max_body: int = 1 << 20, device: str | None = None) -> FastAPI:
    """The app serving the model folder `model` (loaded and checksum-verified now; a ModelFormatError if not).

    Args:
        token: every request but /health and the page needs `Authorization: Bearer TOKEN` (guards.py).
        batching: micro-batch concurrent single-user /recommend requests (batching.py); off, each runs alone.
        max_wait, max_batch: a micro-batch's longest wait for more requests (seconds) and most users.
        max_body: request bodies over this many bytes get 413.
        device: where the model runs (default: its saved config's).
    """
    app = FastAPI(title="coldstart", version=__version__, lifespan=_lifespan,
                  description="Recommendations and onboarding questions for new users (DESIGN.md §7).")
    app.state.model_dir, app.state.device = Path(model), device
    app.state.served = load_served(app.state.model_dir, device)
    app.state.batcher = MicroBatcher(recommend_new_users, max_wait, max_batch) if batching else None
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ValueError, _bad_input)
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    if token is not None:
        app.add_middleware(TokenGuard, token=token)  # outermost: no body is read for a stranger
    return app


# --- the model ---------------------------------------------------------------------------------------------------
def load_served(path: Path, device: str | None = None) -> Served:
    """Load and verify the model folder; its info from the model.json that was loaded (read again when the folder
    was replaced meanwhile, as `coldstart fit` over a served folder does)."""
    for _ in range(3):
        before = read_metadata(path)
        rec = ColdStartRecommender.load(path, device=device)
        meta = read_metadata(path)
        if meta["files"] == before["files"]:
            return Served(rec, model_info(path, meta))
    raise RuntimeError(f"{path}: replaced three times while being loaded")


def model_info(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What `coldstart info` shows first: format, learner, objective, sizes, and the SHA-256 of each file."""
    return {"path": str(path), "format_version": meta["format_version"],
            "coldstart_version": meta["coldstart_version"], "learner": meta["config"].get("learner", "maml"),
            "objective": meta["config"]["objective"], "items": len(meta["items"]),
            "users": meta["training"].get("n_users", 0), "user_history": "user_history" in meta["files"],
            "checksum": meta["files"]["weights"]["sha256"],
            "files": {f["name"]: f["sha256"] for f in meta["files"].values()}}


def current(request: Request) -> Served:
    """The model this request uses from start to end."""
    return request.app.state.served


async def reload(app: FastAPI) -> Served:
    """Load and verify the model folder again, then swap it in (one reload at a time)."""
    return await asyncio.to_thread(_reload, app)


def _reload(app: FastAPI) -> Served:
    with _reloading:
        app.state.served = load_served(app.state.model_dir, app.state.device)
    log.info("serving %s (weights sha256 %s)", app.state.model_dir, app.state.served.info["checksum"])
    return app.state.served


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """SIGHUP reloads the model, where the server's loop can take signals (the main thread, not Windows)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_logged(app)))
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        log.info("SIGHUP does not reload here: use POST /reload")
    yield
    with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
        loop.remove_signal_handler(signal.SIGHUP)


async def _reload_logged(app: FastAPI) -> None:
    try:
        await reload(app)
    except Exception as exc:  # a signal has no one to answer: keep serving the old model, say why
        log.error("reload failed, still serving the old model: %s", exc)


# --- the routes ----------------------------------------------------------------------------------------------------
@router.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "model": current(request).info}


@router.post("/recommend", response_model=Recommendations)
async def recommend(body: RecommendRequest, request: Request) -> dict[str, Any]:
    """Top-k for a new user (`ratings`, adapted on them) or a user of the training data (`user_id` alone)."""
    rec = current(request).rec
    if body.ratings is None:
        ranked = await asyncio.to_thread(_known_user, rec, body.user_id, body.k, body.exclude_seen)
        return {"items": listing(rec, ranked["item_id"].tolist(), ranked["score"].tolist()), "ignored": []}
    pairs, ignored = answer_pairs(rec, body.ratings, ("ratings",))
    items, ratings = support_of(rec, pairs)
    job = NewUser(rec, body.user_id or anonymous_id(items, ratings), items, ratings, body.k, body.exclude_seen)
    batcher = request.app.state.batcher
    ids, scores = await batcher.submit(job) if batcher else (await asyncio.to_thread(recommend_new_users, [job]))[0]
    return {"items": listing(rec, ids, scores), "ignored": ignored}


def _known_user(rec: ColdStartRecommender, user_id: str, k: int, exclude_seen: bool):
    try:
        return rec.recommend_known([user_id], k=k, exclude_seen=exclude_seen)
    except KeyError as exc:
        raise HTTPException(404, detail=exc.args[0] if exc.args else str(exc)) from None


@router.post("/recommend/batch", response_model=BatchRecommendations)
async def recommend_batch(body: BatchRequest, request: Request) -> dict[str, Any]:
    """Top-k for many new users in one batched pass: the lists of `coldstart recommend --ratings`."""
    rec, jobs, ignored, seen = current(request).rec, [], [], set()
    for pos, user in enumerate(body.users):
        if user.user_id in seen:
            raise invalid(("users", pos, "user_id"), f"user {user.user_id!r} is given twice", user.user_id)
        seen.add(user.user_id)
        pairs, skipped = answer_pairs(rec, user.ratings, ("users", pos, "ratings"))
        jobs.append(NewUser(rec, user.user_id, *support_of(rec, pairs), body.k, body.exclude_seen))
        ignored.append(skipped)
    ranked = await asyncio.to_thread(recommend_new_users, jobs)
    return {"users": [{"user_id": job.user_id, "items": listing(rec, *lists), "ignored": skipped}
                      for job, lists, skipped in zip(jobs, ranked, ignored)]}


@router.post("/interview", response_model=Questions)
async def interview(body: InterviewRequest, request: Request) -> dict[str, Any]:
    """The next `n` items to ask a new user to rate, given the answers so far: `coldstart interview`'s."""
    rec = current(request).rec
    answers, ignored = answers_frame(rec, NEW_USER, body.answers, ("answers",))
    questions = await asyncio.to_thread(rec.interview, answers if len(answers) else None, n=body.n,
                                        user_ids=[NEW_USER])
    return {"questions": listing(rec, questions["item_id"].tolist()), "ignored": ignored}


@router.get("/items", response_model=Items)
async def items(request: Request, query: str = Query(min_length=1, max_length=200),
                limit: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
    """Items whose title (or id) holds `query`, any case, then close titles: for a search box."""
    rec = current(request).rec
    found = await asyncio.to_thread(search_items, rec, query, limit)
    return {"items": [{"item_id": i, "label": label} for i, label in zip(found, rec.item_label(found) or
                                                                        [""] * len(found))]}


@router.post("/reload", response_model=Health)
async def reload_model(request: Request) -> dict[str, Any]:
    """Load the model folder again (after `coldstart fit` replaced it) and serve it once verified; 409 and the
    old model kept when it does not load."""
    try:
        served = await reload(request.app)
    except (ValueError, OSError, RuntimeError) as exc:
        raise HTTPException(409, detail=f"reload failed, still serving the old model: {exc}") from None
    return {"status": "ok", "model": served.info}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    index = STATIC / "index.html"
    return HTMLResponse(index.read_text(encoding="utf-8") if index.is_file() else PLACEHOLDER)


# --- errors --------------------------------------------------------------------------------------------------------
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without echoing the input back (it may be large, or a NaN that JSON cannot carry)."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _bad_input(request: Request, exc: ValueError) -> JSONResponse:
    """coldstart's ValueErrors (bad input the schema could not see) as 422, in FastAPI's shape."""
    return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}, status_code=422)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error (the server's log has the details)"}, status_code=500)
