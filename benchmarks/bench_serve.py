"""`coldstart serve` under load: requests/s and latency with micro-batching on and off, and its resilience.

Fits a model on ML-100K (or takes `--model`); the newest `--new-fraction` of users are the new users and their first
`--shots` ratings their support. Starts `coldstart serve` as a subprocess on 127.0.0.1 (a free port, torch threads
pinned to 1) with batching on, then another with `--no-batching`. An asyncio client (a keep-alive connection per worker) sends single-user
`POST /recommend` requests (a different new user each, `k`) at each concurrency for `--seconds` (at most
`--max-requests` each), and `GET /health` at concurrency 16; the same users go through the in-process batched
`rec.recommend` once as users/s. Then, on the batching server at concurrency 16: (a) `POST /reload` mid-load (no
request may fail), (b) SIGKILL mid-load and a restart on the same port (every 200 must equal the reference list the
fresh server gave that user before any load; connection errors during the outage are counted apart).

    python benchmarks/bench_serve.py                       # ML-100K, 3 epochs; about 3-4 min on 2 cores
    python benchmarks/bench_serve.py --model model --seconds 4
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from _common import REPO, describe, table
from bench_recommend import split_new_users, support_sets

from coldstart import ColdStartRecommender, Config, load_dataset

CONCURRENCY = (1, 16, 64)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-100k"), help="dataset (ML-100K)")
    p.add_argument("--model", help="a fitted model folder to serve (default: fit one on the data's other users)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the fit (default 3)")
    p.add_argument("--new-fraction", type=float, default=0.2, help="newest users held out as new (default 0.2)")
    p.add_argument("--shots", type=int, default=5, help="support ratings per new user (default 5)")
    p.add_argument("--k", type=int, default=10, help="items per list (default 10)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each load run (default 8)")
    p.add_argument("--max-requests", type=int, default=20000, help="most requests per load run (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# --- servers -------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`coldstart serve` in a subprocess on 127.0.0.1:port, torch threads pinned to 1."""

    def __init__(self, model: Path, port: int, batching: bool, log: Path):
        self.model, self.port, self.batching, self.log = model, port, batching, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> float:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "coldstart", "serve", "--model", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--threads", "1", "--quiet",
               "--batching" if self.batching else "--no-batching"]
        start = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"server not up after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


# --- load ----------------------------------------------------------------------------------------------------------
class Run:
    """One load run's outcome: latencies (s) and statuses of the answers, connection errors, wrong answers."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: list[int] = []
        self.conn_errors = self.wrong = self.checked = 0
        self.seconds = 0.0

    def row(self, mode: str, conc: object) -> list[object]:
        ok = sum(s == 200 for s in self.status)
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return [mode, conc, f"{ok / self.seconds:,.1f}", f"{np.percentile(lat, 50):.1f}",
                f"{np.percentile(lat, 99):.1f}", sum(s >= 500 for s in self.status),
                sum(s != 200 for s in self.status), self.conn_errors]

    @property
    def rps(self) -> float:
        return sum(s == 200 for s in self.status) / self.seconds

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies, 99)) * 1000 if self.latencies else float("nan")


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load client. A few lines of bytes instead of
    httpx, whose per-request CPU on these 2 shared cores capped every server near the same rate at concurrency 64
    (the client measured itself, and batching on/off looked alike)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        try:
            self.writer.write(head + payload)
            await self.writer.drain()
            status_line = await self.reader.readuntil(b"\r\n")
            headers = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0])
            return int(status_line.split()[1]), await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
            self.close()
            raise ConnectionError(str(exc)) from exc

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(url: str, bodies: list[dict] | None, conc: int, seconds: float, max_requests: int,
               reference: dict[str, tuple] | None = None, during=None) -> Run:
    """`conc` workers, a connection each, send requests (POST /recommend with the bodies in turn, or GET /health
    when None) until `seconds` pass or `max_requests` were sent; `during(t0)` runs alongside (a reload, a kill)."""
    run, sent = Run(), 0
    host, port = url.removeprefix("http://").split(":")
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def worker() -> None:
        nonlocal sent
        conn = Connection(host, int(port))
        while time.perf_counter() < deadline and sent < max_requests:
            i, sent = sent, sent + 1
            body = None if bodies is None else bodies[i % len(bodies)]
            start = time.perf_counter()
            try:
                status, data = await (conn.request("GET", "/health") if body is None else
                                      conn.request("POST", "/recommend", body))
            except ConnectionError:
                run.conn_errors += 1
                await asyncio.sleep(0.05)  # the server is down: do not spin
                continue
            run.latencies.append(time.perf_counter() - start)
            run.status.append(status)
            if status == 200 and reference is not None:
                run.checked += 1
                got = tuple(x["item_id"] for x in json.loads(data)["items"])
                run.wrong += got != reference[body["user_id"]]
        conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(conc)]
    extra = [asyncio.create_task(during(t0))] if during else []
    await asyncio.gather(*tasks, *extra)
    run.seconds = time.perf_counter() - t0
    return run


def bodies_of(support, k: int) -> list[dict]:
    return [{"user_id": str(u), "k": k,
             "ratings": [{"item_id": str(i), "rating": float(r)} for i, r in zip(g["item_id"], g["rating"])]}
            for u, g in support.groupby("user_id", sort=False)]


def reference_lists(url: str, bodies: list[dict]) -> dict[str, tuple]:
    """Each user's list from the fresh server, one request at a time, before any load."""
    out = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for body in bodies:
            resp = client.post("/recommend", json=body)
            resp.raise_for_status()
            out[body["user_id"]] = tuple(x["item_id"] for x in resp.json()["items"])
    return out


# --- main ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load_dataset(args.data)
    print(f"data: {describe(data)}")
    n_new = int(round(args.new_fraction * data.ratings["user_id"].nunique()))
    train, new, _ = split_new_users(data, n_new)
    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    if args.model:
        model = Path(args.model)
        rec = ColdStartRecommender.load(model, device="cpu")
        print(f"model: {model}")
    else:
        model = tmp / "model"
        rec = ColdStartRecommender(Config(epochs=args.epochs, device="cpu", seed=args.seed))
        t = time.perf_counter()
        rec.fit(train)
        rec.save(model)
        print(f"fit: {train.ratings['user_id'].nunique()} users, {args.epochs} epoch(s), "
              f"{time.perf_counter() - t:.1f} s; saved to {model}")
    support = support_sets(data, new, args.shots, rec)
    bodies = bodies_of(support, args.k)
    print(f"new users: {len(bodies)} (newest {args.new_fraction:.0%}), support {args.shots} ratings each, "
          f"k {args.k}; load runs {args.seconds:g} s / at most {args.max_requests} requests; server logs in {tmp}")

    # in-process batched API, same users (torch threads 1, like the servers)
    rec.recommend(support.head(50), k=args.k)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        inproc = rec.recommend(support, k=args.k)
        best = min(best, time.perf_counter() - t)
    inproc_lists = {str(u): tuple(map(str, g.sort_values("rank")["item_id"]))
                    for u, g in inproc.groupby("user_id", sort=False)}

    port = free_port()
    runs: dict[tuple[str, object], Run] = {}
    on = Server(model, port, batching=True, log=tmp / "serve_batching.log")
    print(f"server (batching on) up in {on.start():.1f} s on {on.url}")
    try:
        reference = reference_lists(on.url, bodies)
        same = sum(reference[u] == inproc_lists.get(u) for u in reference)
        print(f"reference lists (fresh server, one request at a time): {len(reference)} users; "
              f"equal to in-process recommend: {same}/{len(reference)}")
        runs[("health", 16)] = asyncio.run(load(on.url, None, 16, args.seconds, args.max_requests))
        for c in CONCURRENCY:
            runs[("batching on", c)] = asyncio.run(load(on.url, bodies, c, args.seconds, args.max_requests,
                                                        reference))

        # (a) reload mid-load
        reload_status: list[int] = []

        async def reload_mid(t0: float) -> None:
            await asyncio.sleep(args.seconds / 3)
            async with httpx.AsyncClient(base_url=on.url, timeout=60.0) as client:
                reload_status.append((await client.post("/reload")).status_code)

        reload_run = asyncio.run(load(on.url, bodies, 16, args.seconds, args.max_requests, reference, reload_mid))

        # (b) SIGKILL mid-load, restart on the same port
        outage: dict[str, float] = {}

        async def kill_mid(t0: float) -> None:
            await asyncio.sleep(args.seconds / 4)
            outage["kill"] = time.perf_counter() - t0
            on.kill()
            outage["restart"] = await asyncio.to_thread(on.start)
            outage["back"] = time.perf_counter() - t0

        kill_run = asyncio.run(load(on.url, bodies, 16, args.seconds * 2, args.max_requests, reference, kill_mid))
    finally:
        on.stop()

    off = Server(model, free_port(), batching=False, log=tmp / "serve_no_batching.log")
    print(f"server (batching off) up in {off.start():.1f} s on {off.url}")
    try:
        reference_lists(off.url, bodies[:32])  # warm-up
        for c in CONCURRENCY:
            runs[("batching off", c)] = asyncio.run(load(off.url, bodies, c, args.seconds, args.max_requests,
                                                         reference))
    finally:
        off.stop()

    headers = ["mode", "concurrency", "requests/s", "p50 ms", "p99 ms", "5xx", "non-200", "conn errors"]
    rows = [runs[key].row(*key) for key in [("health", 16)] + [(m, c) for m in ("batching on", "batching off")
                                                               for c in CONCURRENCY]]
    rows.append(["in-process batched (users/s)", len(bodies), f"{len(bodies) / best:,.1f}", "", "", "", "", ""])
    print()
    print(table(headers, rows))
    wrong = sum(r.wrong for r in runs.values())
    checked = sum(r.checked for r in runs.values())
    print(f"answers checked against the reference in the load runs: {checked}, wrong: {wrong}")

    ratio_batch = runs[("batching on", 64)].rps / runs[("batching off", 64)].rps
    ratio_health = runs[("batching on", 16)].rps / runs[("health", 16)].rps
    p99 = runs[("batching on", 16)].p99_ms
    print()
    print("| check | value | floor | met |")
    print("|---|---|---|---|")
    print(f"| batching on/off requests/s at c64 | {ratio_batch:.2f}x | >= 2x | {'yes' if ratio_batch >= 2 else 'NO'} |")
    print(f"| /recommend c16 / /health c16 requests/s | {ratio_health:.3f} | >= 0.25 | "
          f"{'yes' if ratio_health >= 0.25 else 'NO'} |")
    print(f"| p99 at c16, batching on | {p99:.1f} ms | < 250 ms | {'yes' if p99 < 250 else 'NO'} |")
    bad_reload = sum(s != 200 for s in reload_run.status) + reload_run.conn_errors
    print(f"| reload mid-load (c16): failed or non-200 | {bad_reload} of {len(reload_run.status) + reload_run.conn_errors}"
          f" (reload answered {reload_status}), wrong {reload_run.wrong} | 0 | "
          f"{'yes' if bad_reload == 0 and reload_run.wrong == 0 and reload_status == [200] else 'NO'} |")
    ok_kill = sum(s == 200 for s in kill_run.status)
    print(f"| SIGKILL + restart mid-load (c16): wrong answers among 200s | {kill_run.wrong} of {ok_kill} "
          f"(non-200 {sum(s != 200 for s in kill_run.status)}, connection errors {kill_run.conn_errors}, killed at "
          f"{outage.get('kill', float('nan')):.1f} s, back at {outage.get('back', float('nan')):.1f} s) | 0 | "
          f"{'yes' if kill_run.wrong == 0 and ok_kill > 0 else 'NO'} |")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
