"""Ask a running `coldstart serve` for a new user's top k, with only the standard library (urllib).

    coldstart fit --out model && coldstart serve --model model &
    python examples/serve_client.py --rate "Toy Story (1995)=5" --rate "Matrix, The (1999)=5" --k 5

ITEM is an id or a title (as `coldstart recommend --rate` takes it); items the model does not know are listed as
ignored. `--token` (or COLDSTART_TOKEN) when the server was started with one.
"""
from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any


def call(url: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    """The JSON reply of `path` (POST when there is a body, else GET); an HTTP error raises with the server's
    JSON message in it."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{path}: HTTP {exc.code}: {exc.read().decode()}") from None


def recommend(url: str, ratings: dict[str, float], k: int = 10, token: str | None = None) -> dict[str, Any]:
    """`{"items": [{"item_id", "score", "label"}], "ignored": [...]}` for a new user with these ratings."""
    body = {"ratings": [{"item_id": item, "rating": r} for item, r in ratings.items()], "k": k}
    return call(url, "/recommend", body, token)


def parse_rate(text: str) -> tuple[str, float]:
    item, sep, value = text.rpartition("=")
    if not sep or not item:
        raise argparse.ArgumentTypeError(f"expected ITEM=RATING, found {text!r}")
    return item, float(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)")
    parser.add_argument("--rate", type=parse_rate, action="append", default=[], metavar="ITEM=RATING")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--token", default=os.environ.get("COLDSTART_TOKEN"))
    args = parser.parse_args(argv)
    reply = recommend(args.url, dict(args.rate), args.k, args.token)
    for rank, item in enumerate(reply["items"], 1):
        print(f"{rank:3d}  {item['score']:8.4f}  {item['item_id']:>10}  {item['label']}")
    if reply["ignored"]:
        print(f"ignored (unknown to the model): {', '.join(reply['ignored'])}")


if __name__ == "__main__":
    main()
