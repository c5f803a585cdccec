"""What stands before the routes: the bearer token, the request size limit, and the rule that a server reachable
from other machines needs a token.

With a token, every request needs `Authorization: Bearer TOKEN` (401 otherwise) but those of OPEN: `GET /health`
(for load balancers' probes; it shows the model's checksums, no user data) and the onboarding page with its static
files (no data in them: the page's own calls to the API carry the token the person enters).
"""
from __future__ import annotations

import hmac
import ipaddress

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN = ("/health", "/")  # paths that need no token (and everything under /static/)


def check_bind(host: str, token: str | None) -> None:
    """A ValueError when `host` is not a loopback address and there is no token to guard it."""
    if token is None and not is_loopback(host):
        raise ValueError(f"--host {host}: other machines could reach the API; give --token T (or set COLDSTART_TOKEN) "
                         "so that every request must carry `Authorization: Bearer T`, or bind 127.0.0.1")
    if token is not None and not token.strip():
        raise ValueError("--token: expected a non-empty token")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


class TokenGuard:
    """401 (JSON) for a request without `Authorization: Bearer <token>`, except to the OPEN paths."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._open(scope["path"]) and not self._allowed(scope):
            response = JSONResponse({"detail": "missing or wrong token: send `Authorization: Bearer TOKEN`"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN or path.startswith("/static/")

    def _allowed(self, scope: Scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self.expected)


class BodyLimit:
    """413 (JSON) for a request body over `max_bytes`, declared (Content-Length) or streamed; the app gets the body
    it read, whole."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body, more = body + message.get("body", b""), message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over the limit of {self.max_bytes:,} bytes"},
                                status_code=413)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then waits on the real one (for the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay
