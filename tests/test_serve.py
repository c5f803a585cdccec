"""`coldstart serve`: every endpoint against the recommender and the CLI it mirrors, bad input as 4xx JSON, the
token, the body limit, reload, micro-batching (identical lists, and really batched), the OpenAPI schema under
property tests, and a real server process (SIGHUP, the non-loopback refusal)."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e \".[serve]\"")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed: pip install -e \".[serve]\"")

from coldstart import ColdStartRecommender, make_synthetic  # noqa: E402
from coldstart.cli import app as cli  # noqa: E402
from coldstart.model_json import FORMAT_VERSION  # noqa: E402
from coldstart.serve import app as app_module  # noqa: E402
from coldstart.serve import create_app, launch  # noqa: E402
from coldstart.serve.batching import MicroBatcher, NewUser, plan  # noqa: E402
from coldstart.serve.guards import check_bind  # noqa: E402
from coldstart.serve.inputs import anonymous_id  # noqa: E402

from tests.conftest import TINY  # noqa: E402

CONFIG = TINY.replace(n_negatives=16)  # fewer negatives than items: each user's draw depends on its id
TITLES = {"i7": "Matrix, The (1999)", "i8": "Matrix Reloaded, The (2003)"}
MATRIX = "The Matrix (1999)"  # as a person types it: finds i7
runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


# --- fixtures and helpers ------------------------------------------------------------------------------------------
def synthetic(seed: int = 1):
    data = make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=seed)
    data.items["title"] = [TITLES.get(i, t) for i, t in zip(data.items["item_id"], data.items["title"])]
    return data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "model"
    ColdStartRecommender(CONFIG).fit(synthetic()).save(path)
    return path


@pytest.fixture(scope="module")
def rec(model_dir) -> ColdStartRecommender:
    return ColdStartRecommender.load(model_dir)


@pytest.fixture(scope="module")
def app(model_dir):
    return create_app(model_dir, batching=False)


@pytest.fixture()
def own_model(tmp_path, model_dir) -> Path:
    """A copy of the model folder that a test may replace."""
    path = tmp_path / "model"
    ColdStartRecommender.load(model_dir).save(path)
    return path


def client(app, **kwargs) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", **kwargs)


def call(app, method: str, url: str, **kwargs) -> httpx.Response:
    async def go():
        async with client(app) as c:
            return await c.request(method, url, **kwargs)
    return asyncio.run(go())


def post(app, url: str, body, **kwargs) -> httpx.Response:
    return call(app, "POST", url, json=body, **kwargs)


def concurrently(app, bodies: list[dict]) -> list[httpx.Response]:
    async def go():
        async with client(app) as c:
            return await asyncio.gather(*(c.post("/recommend", json=b) for b in bodies))
    return asyncio.run(go())


def ratings(*pairs) -> list[dict]:
    return [{"item_id": item, "rating": rating} for item, rating in pairs]


def frame(user_id: str, pairs) -> pd.DataFrame:
    return pd.DataFrame({"user_id": user_id, "item_id": [i for i, _ in pairs], "rating": [float(r) for _, r in pairs]})


def anon(support: pd.DataFrame) -> str:
    return anonymous_id(tuple(support["item_id"]), tuple(support["rating"]))


def listed(ranked: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    return ranked["item_id"].tolist(), ranked["score"].to_numpy()


def assert_same_list(items: list[dict], expected: pd.DataFrame) -> None:
    ids, scores = listed(expected)
    assert [i["item_id"] for i in items] == ids
    np.testing.assert_allclose([i["score"] for i in items], scores, rtol=1e-6)


def cli_csv(*args) -> pd.DataFrame:
    result = runner.invoke(cli, [str(a) for a in args] + ["--format", "csv", "--quiet"])
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout), dtype={"item_id": str, "user_id": str})


# --- the endpoints -------------------------------------------------------------------------------------------------
def test_health_shows_the_model_and_the_weights_checksum(app, model_dir):
    response = call(app, "GET", "/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    model = response.json()["model"]
    weights = json.loads((model_dir / "model.json").read_text())["files"]["weights"]["name"]
    assert model["checksum"] == hashlib.sha256((model_dir / weights).read_bytes()).hexdigest()
    assert (model["objective"], model["learner"], model["items"], model["format_version"]) == ("implicit", "maml",
                                                                                                50, FORMAT_VERSION)


def test_recommend_a_new_user_by_ids_and_titles_unknown_items_ignored(app, rec):
    body = {"ratings": ratings(("i1", 5), (MATRIX, 4), ("no-such-item", 3)), "k": 4}
    response = post(app, "/recommend", body)
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] == ["no-such-item"]
    support = frame("", [("i1", 5), ("i7", 4)])
    expected = rec.recommend(support.assign(user_id=anon(support)), k=4)
    items = response.json()["items"]
    assert_same_list(items, expected)
    assert [i["label"] for i in items] == rec.item_label(expected["item_id"].tolist())
    assert not {"i1", "i7"} & {i["item_id"] for i in items}  # exclude_seen by default


def test_a_number_as_item_id_is_read_as_its_text(app):
    response = post(app, "/recommend", {"ratings": [{"item_id": 1, "rating": 5}, {"item_id": 4242, "rating": 5}]})
    assert response.status_code == 200 and response.json()["ignored"] == ["1", "4242"]  # "1": in several titles


def test_exclude_seen_false_keeps_the_rated_items(app, rec):
    body = {"ratings": ratings(("i1", 5)), "k": 50, "exclude_seen": False}
    items = post(app, "/recommend", body).json()["items"]
    assert len(items) == 50 and "i1" in {i["item_id"] for i in items}


def test_an_anonymous_user_id_comes_from_its_support_so_a_request_always_gets_one_list(app, rec):
    support = frame("", [("i1", 5), ("i2", 1)])
    assert anon(support) == anon(support.copy()) != anon(frame("", [("i1", 5)]))
    a, b = (rec.recommend(support.assign(user_id=u), k=5) for u in ("someone", "someone else"))
    assert not np.allclose(a["score"], b["score"])  # the id matters: it draws the user's negatives
    body = {"ratings": ratings(("i1", 5), ("i2", 1)), "k": 5}
    assert post(app, "/recommend", body).json() == post(app, "/recommend", body).json()


def test_a_new_user_named_new_user_gets_the_cli_rate_list(app, model_dir):
    body = {"ratings": [*ratings(("i1", 5), (MATRIX, 2)), {"item_id": "i3", "seen": False}], "user_id": "new-user",
            "k": 6}
    response = post(app, "/recommend", body)
    expected = cli_csv("recommend", "--model", model_dir, "--rate", "i1=5", "--rate", f"{MATRIX}=2", "--unseen", "i3",
                       "--k", 6)
    assert_same_list(response.json()["items"], expected)


def test_empty_ratings_give_the_unadapted_list(app, rec):
    response = post(app, "/recommend", {"ratings": [], "k": 3})
    empty = frame("", [])
    expected = rec.recommend(empty, k=3, user_ids=[anon(empty)])
    assert_same_list(response.json()["items"], expected)


def test_a_known_user_is_adapted_on_their_history_and_an_unknown_one_is_404(app, rec):
    response = post(app, "/recommend", {"user_id": "u3", "k": 4})
    assert_same_list(response.json()["items"], rec.recommend_known(["u3"], k=4))
    missing = post(app, "/recommend", {"user_id": "nobody"})
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]


def test_batch_gives_the_lists_of_cli_recommend_ratings(app, model_dir, tmp_path):
    users = {"a": [("i1", 5), ("i2", 4)], "b": [("i3", 1), (MATRIX, 5)], "c": [("i4", 3)]}
    file = tmp_path / "support.csv"
    pd.concat([frame(u, [("i7" if i == MATRIX else i, r) for i, r in pairs]) for u, pairs in users.items()]
              ).to_csv(file, index=False)
    body = {"users": [{"user_id": u, "ratings": ratings(*pairs)} for u, pairs in users.items()], "k": 4}
    body["users"][2]["ratings"].append({"item_id": "unknown", "rating": 2})
    response = post(app, "/recommend/batch", body)
    assert response.status_code == 200, response.text
    expected = cli_csv("recommend", "--model", model_dir, "--ratings", file, "--k", 4)
    got = response.json()["users"]
    assert [u["user_id"] for u in got] == ["a", "b", "c"]
    for user in got:
        assert_same_list(user["items"], expected[expected["user_id"] == user["user_id"]])
    assert [u["ignored"] for u in got] == [[], [], ["unknown"]]


def test_batch_refuses_a_user_given_twice(app):
    body = {"users": [{"user_id": "a", "ratings": []}, {"user_id": "a", "ratings": ratings(("i1", 5))}]}
    response = post(app, "/recommend/batch", body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "users", 1, "user_id"]


def test_interview_asks_what_the_cli_asks(app, model_dir):
    answers = [*ratings(("i1", 4), (MATRIX, 5)), {"item_id": "i2", "seen": False}, {"item_id": "zzz", "rating": 3}]
    response = post(app, "/interview", {"answers": answers, "n": 5})
    assert response.status_code == 200, response.text
    expected = cli_csv("interview", "--model", model_dir, "--rate", "i1=4", "--rate", f"{MATRIX}=5", "--unseen",
                       "i2", "--n", 5)
    assert [q["item_id"] for q in response.json()["questions"]] == expected["item_id"].tolist()
    assert response.json()["ignored"] == ["zzz"]
    first = cli_csv("interview", "--model", model_dir, "--n", 3)
    assert [q["item_id"] for q in post(app, "/interview", {"n": 3}).json()["questions"]] == first["item_id"].tolist()


def test_items_finds_titles_by_substring_then_close_matches(app, rec):
    found = call(app, "GET", "/items", params={"query": "MATRIX", "limit": 5}).json()["items"]
    assert sorted(found[:2], key=lambda i: i["item_id"]) == [{"item_id": i, "label": TITLES[i]} for i in TITLES]
    assert call(app, "GET", "/items", params={"query": "The Matrix"}).json()["items"][0]["item_id"] == "i7"
    typo = call(app, "GET", "/items", params={"query": "Matirx, The (1999)"}).json()["items"]
    assert "i7" in [i["item_id"] for i in typo]  # no substring: close titles
    assert len(call(app, "GET", "/items", params={"query": "item", "limit": 3}).json()["items"]) == 3
    assert len(call(app, "GET", "/items", params={"query": "matrix", "limit": 1}).json()["items"]) == 1
    by_id = call(app, "GET", "/items", params={"query": "i7"}).json()["items"]
    assert by_id[0] == {"item_id": "i7", "label": TITLES["i7"]}  # an id first, though no title holds "i7"
    for params in ({"query": ""}, {"query": "x", "limit": 0}, {}):
        assert call(app, "GET", "/items", params=params).status_code == 422


def test_openapi_schema_describes_every_endpoint(app):
    schema = call(app, "GET", "/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/health", "/recommend", "/recommend/batch", "/interview", "/items", "/reload"} <= set(schema["paths"])
    assert "Answer" in schema["components"]["schemas"]


def test_the_page_is_static_index_html_else_a_placeholder(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "STATIC", tmp_path)
    bare = create_app(model_dir)
    page = call(bare, "GET", "/")
    assert page.status_code == 200 and "/openapi.json" in page.text
    (tmp_path / "index.html").write_text("<p>onboarding</p>")
    (tmp_path / "app.js").write_text("let x = 1;")
    assert call(bare, "GET", "/").text == "<p>onboarding</p>"
    assert call(bare, "GET", "/static/app.js").text == "let x = 1;"


# --- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, field", [
    ({"ratings": ratings(("i1", 5)), "k": 0}, "k"),
    ({"ratings": ratings(("i1", 5)), "k": "ten"}, "k"),
    ({"ratings": ratings(("i1", 5)), "k": 100000}, "k"),
    ({"k": 5}, "body"),
    ({"ratings": "i1=5"}, "ratings"),
    ({"ratings": [{"item_id": "i1"}]}, "ratings"),
    ({"ratings": [{"item_id": "i1", "rating": "five"}]}, "rating"),
    ({"ratings": [{"item_id": "i1", "rating": 5, "seen": False}]}, "ratings"),
    ({"ratings": [{"item_id": "", "rating": 5}]}, "item_id"),
    ({"ratings": [{"rating": 5}]}, "item_id"),
    ({"ratings": ratings(("i1", 5)), "colour": "red"}, "colour"),
    ({"ratings": ratings(("i1", 500))}, "rating"),
    ([1, 2], "body"),
])
def test_bad_input_is_a_422_naming_the_field(app, body, field):
    response = post(app, "/recommend", body)
    assert response.status_code == 422, response.text
    assert any(field in err["loc"] for err in response.json()["detail"]), response.json()


def test_non_finite_and_non_json_bodies_are_4xx_json(app):
    nan = call(app, "POST", "/recommend", content=b'{"ratings": [{"item_id": "i1", "rating": NaN}]}',
               headers={"content-type": "application/json"})
    assert nan.status_code == 422 and nan.json()["detail"][0]["loc"][-1] == "rating"
    garbage = call(app, "POST", "/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= garbage.status_code < 500 and "detail" in garbage.json()


def test_a_name_of_several_items_is_ignored_and_a_unique_part_of_a_title_is_enough(app):
    response = post(app, "/interview", {"answers": ratings(("Matrix", 5), ("Matrix Reloaded", 4)), "n": 3})
    assert response.status_code == 200 and response.json()["ignored"] == ["Matrix"]
    assert "i8" not in [q["item_id"] for q in response.json()["questions"]]  # answered: never asked


def test_coldstart_value_errors_are_422_and_other_failures_a_bare_500(model_dir, monkeypatch):
    app = create_app(model_dir)
    rec = app.state.served.rec

    def bad_input(*args, **kwargs):
        raise ValueError("answers: row 0, column 'rating': expected a number")
    monkeypatch.setattr(rec, "interview", bad_input)
    response = post(app, "/interview", {"n": 2})
    assert response.status_code == 422 and "expected a number" in response.json()["detail"][0]["msg"]

    def bug(*args, **kwargs):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(rec, "interview", bug)
    response = post(app, "/interview", {"n": 2})
    assert response.status_code == 500 and "secret" not in response.text and "Traceback" not in response.text
    assert "internal error" in response.json()["detail"]


def test_a_body_over_the_limit_is_413(model_dir):
    app = create_app(model_dir, max_body=200)
    small = {"ratings": ratings(("i1", 5))}
    assert post(app, "/recommend", small).status_code == 200
    big = {"ratings": ratings(*[(f"i{i}", 3) for i in range(40)])}
    assert post(app, "/recommend", big).status_code == 413

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b" " * 50
    streamed = call(app, "POST", "/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "limit" in streamed.json()["detail"]


# --- the token and the address -------------------------------------------------------------------------------------
def test_with_a_token_every_request_but_health_and_the_page_needs_it(model_dir):
    app = create_app(model_dir, token="s3cret")
    body = {"ratings": ratings(("i1", 5))}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = post(app, "/recommend", body, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["detail"]
    assert post(app, "/recommend", body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert call(app, "GET", "/openapi.json").status_code == 401
    assert post(app, "/reload", None).status_code == 401
    assert call(app, "GET", "/health").status_code == 200 and call(app, "GET", "/").status_code == 200


def test_a_non_loopback_address_needs_a_token():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.com"):
        with pytest.raises(ValueError, match="--token"):
            check_bind(host, None)
        check_bind(host, "t")
    with pytest.raises(ValueError, match="non-empty"):
        check_bind("0.0.0.0", " ")


def test_serve_command_refuses_an_open_address_and_reads_the_token_from_the_environment(model_dir, monkeypatch):
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: started.append((app, kwargs)))
    refused = runner.invoke(cli, ["serve", "--model", str(model_dir), "--host", "0.0.0.0"], env={"COLDSTART_TOKEN": None})
    assert refused.exit_code == 1 and "--token" in refused.output and not started
    ok = runner.invoke(cli, ["serve", "--model", str(model_dir), "--host", "0.0.0.0", "--port", "9999",
                             "--no-batching"], env={"COLDSTART_TOKEN": "t0k"})
    assert ok.exit_code == 0, ok.output
    (app, kwargs), = started
    assert (kwargs["host"], kwargs["port"]) == ("0.0.0.0", 9999) and app.state.batcher is None
    assert post(app, "/recommend", {"ratings": []}).status_code == 401
    assert post(app, "/recommend", {"ratings": []}, headers={"Authorization": "Bearer t0k"}).status_code == 200


def test_serve_command_with_workers_hands_uvicorn_a_factory_and_checks_the_model_first(model_dir, tmp_path,
                                                                                       monkeypatch):
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: started.append((app, kwargs)))
    monkeypatch.delenv(launch.SETTINGS, raising=False)
    broken = runner.invoke(cli, ["serve", "--model", str(tmp_path), "--workers", "2"])
    assert broken.exit_code == 1 and "model" in broken.output and not started
    ok = runner.invoke(cli, ["serve", "--model", str(model_dir), "--workers", "2", "--max-body", "100"])
    assert ok.exit_code == 0, ok.output
    (target, kwargs), = started
    assert target == "coldstart.serve.launch:app_from_env" and kwargs["factory"] and kwargs["workers"] == 2
    worker_app = launch.app_from_env()  # what each worker process builds
    assert post(worker_app, "/recommend", {"ratings": ratings(("i1", 5))}).status_code == 200
    assert post(worker_app, "/recommend", {"ratings": ratings(*[("i1", 5)] * 10)}).status_code == 413


def test_serve_command_says_what_to_install_without_fastapi(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    for name in [m for m in sys.modules if m.startswith("coldstart.serve")]:
        monkeypatch.delitem(sys.modules, name)
    result = runner.invoke(cli, ["serve", "--model", str(model_dir)])
    assert result.exit_code == 1 and "coldstart-rec[serve]" in result.output


def test_the_cli_imports_no_web_framework():
    code = "import sys, coldstart, coldstart.cli; assert not {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- reload --------------------------------------------------------------------------------------------------------
def test_reload_swaps_in_the_new_model_and_keeps_the_old_one_when_it_does_not_verify(own_model):
    app = create_app(own_model)
    before = call(app, "GET", "/health").json()["model"]["checksum"]
    new = ColdStartRecommender(CONFIG.replace(seed=7)).fit(synthetic(seed=2))
    new.save(own_model)
    response = post(app, "/reload", None)
    assert response.status_code == 200 and response.json()["model"]["checksum"] != before
    body = {"ratings": ratings(("i1", 5)), "k": 5}
    support = frame("", [("i1", 5)])
    assert_same_list(post(app, "/recommend", body).json()["items"],
                     new.recommend(support.assign(user_id=anon(support)), k=5))
    weights = own_model / json.loads((own_model / "model.json").read_text())["files"]["weights"]["name"]
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated: fails its checksum
    failed = post(app, "/reload", None)
    assert failed.status_code == 409 and "still serving the old model" in failed.json()["detail"]
    assert call(app, "GET", "/health").json()["model"]["checksum"] == response.json()["model"]["checksum"]
    assert post(app, "/recommend", body).status_code == 200


def test_a_folder_replaced_while_loading_is_loaded_again(own_model, monkeypatch):
    new = ColdStartRecommender(CONFIG.replace(seed=7)).fit(synthetic(seed=2))
    load = ColdStartRecommender.load

    def load_then_replaced(path, device=None):  # `coldstart fit` replaces the folder just after the first load
        loaded = load(path, device)
        if not replaced:
            replaced.append(new.save(path))
        return loaded
    replaced = []
    monkeypatch.setattr(app_module.ColdStartRecommender, "load", load_then_replaced)
    served = app_module.load_served(own_model)
    weights = own_model / json.loads((own_model / "model.json").read_text())["files"]["weights"]["name"]
    assert served.info["checksum"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    support = frame("x", [("i1", 5)])
    pd.testing.assert_frame_equal(served.rec.recommend(support), new.recommend(support))


@pytest.mark.parametrize("batching", [True, False])
def test_a_request_in_flight_finishes_on_the_model_it_started_with(own_model, batching):
    app = create_app(own_model, batching=batching)
    old = app.state.served.rec
    body = {"ratings": ratings(("i1", 5), ("i9", 2)), "k": 5}
    support = frame("", [("i1", 5), ("i9", 2)])
    expected_old = old.recommend(support.assign(user_id=anon(support)), k=5)
    new = ColdStartRecommender(CONFIG.replace(seed=7)).fit(synthetic(seed=2))
    new.save(own_model)
    expected_new = new.recommend(support.assign(user_id=anon(support)), k=5)
    assert not np.allclose(expected_new["score"], expected_old["score"])
    entered, release = threading.Event(), threading.Event()
    recommend = old.recommend

    def slow(*args, **kwargs):
        entered.set()
        release.wait(30)
        return recommend(*args, **kwargs)
    old.recommend = slow

    async def go():
        async with client(app) as c:
            pending = asyncio.create_task(c.post("/recommend", json=body))
            await asyncio.to_thread(entered.wait, 30)
            reloaded = await c.post("/reload")
            release.set()
            return await pending, reloaded, await c.post("/recommend", json=body)
    in_flight, reloaded, after = asyncio.run(go())
    assert reloaded.status_code == 200 and app.state.served.rec is not old
    assert_same_list(in_flight.json()["items"], expected_old)
    assert_same_list(after.json()["items"], expected_new)


# --- micro-batching ------------------------------------------------------------------------------------------------
def some_requests(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    bodies = []
    for u in range(n):
        items = rng.choice(50, size=rng.integers(1, 6), replace=False)
        body = {"ratings": ratings(*[(f"i{i}", int(rng.integers(1, 6))) for i in items]), "k": int(rng.integers(1, 8))}
        if u % 5 == 4:
            body["exclude_seen"] = False
        bodies.append(body)
    bodies[3]["ratings"].append({"item_id": "unknown", "rating": 1})
    bodies[5]["ratings"].append({"item_id": "i4", "seen": False})
    bodies[6] = dict(bodies[1])  # the same request twice in one batch
    return bodies


def counting_calls(app) -> list[int]:
    """Counts the recommender's batched calls."""
    rec, calls = app.state.served.rec, []
    recommend = rec.recommend

    def counted(support, *args, **kwargs):
        calls.append(len(kwargs.get("user_ids") or []))
        return recommend(support, *args, **kwargs)
    rec.recommend = counted
    return calls


def test_concurrent_requests_are_batched_and_each_gets_its_list_alone(model_dir, app):
    batched = create_app(model_dir, max_wait=0.2)
    calls = counting_calls(batched)
    bodies = some_requests(16)
    together = concurrently(batched, bodies)
    assert len(calls) < len(bodies) and max(calls) > 1  # one call adapted many users
    assert batched.state.batcher.batches < len(bodies) and batched.state.batcher.largest > 1
    for body, response in zip(bodies, together):
        alone = post(app, "/recommend", body)  # batching off
        assert response.status_code == alone.status_code == 200
        assert response.json()["ignored"] == alone.json()["ignored"]
        assert [i["item_id"] for i in response.json()["items"]] == [i["item_id"] for i in alone.json()["items"]]
        np.testing.assert_allclose([i["score"] for i in response.json()["items"]],
                                   [i["score"] for i in alone.json()["items"]], rtol=1e-6)


def test_a_batch_holds_at_most_max_batch_users(model_dir):
    app = create_app(model_dir, max_wait=0.2, max_batch=4)
    assert all(r.status_code == 200 for r in concurrently(app, some_requests(10)))
    assert app.state.batcher.largest == 4 and app.state.batcher.batches >= 3


def test_without_batching_each_request_is_its_own_call(app):
    calls = counting_calls(app)
    try:
        concurrently(app, some_requests(8))
    finally:
        del app.state.served.rec.recommend  # the instance's wrapper: the class's method again
    assert len(calls) == 8 and app.state.batcher is None


def test_the_batcher_waits_a_bounded_time_under_load_only_and_passes_errors_to_each_request():
    seen = []

    def run(jobs):
        seen.append(list(jobs))
        if "bad" in jobs:
            raise ValueError("bad job")
        return [j.upper() for j in jobs]

    async def go():
        batcher = MicroBatcher(run, max_wait=0.05)
        start = time.perf_counter()
        first = await batcher.submit("a")  # idle: runs at once
        idle = time.perf_counter() - start
        results = await asyncio.gather(*(batcher.submit(j) for j in ("b", "bad", "c")), return_exceptions=True)
        start = time.perf_counter()
        last = await batcher.submit("d")  # the last batch had company: waits for more, a bounded time
        return first, idle, results, last, time.perf_counter() - start
    first, idle, results, last, waited = asyncio.run(asyncio.wait_for(go(), 10))
    assert first == "A" and idle < 0.04 and last == "D" and 0.04 < waited < 1.0
    assert seen[1] == ["b", "bad", "c"] and all(isinstance(r, ValueError) for r in results)
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(run, max_batch=0)


def test_plan_puts_one_model_one_exclude_seen_and_each_user_id_once_in_a_call(rec):
    other = object()  # stands for another model (a reload in between)
    jobs = [NewUser(rec, "a", ("i1",), (5.0,)), NewUser(rec, "b", ("i2",), (5.0,)),
            NewUser(rec, "a", ("i1",), (5.0,), k=3),  # the same user and support: shares the call
            NewUser(rec, "a", ("i3",), (1.0,)),  # the same id, another support: the next call
            NewUser(rec, "c", ("i1",), (5.0,), exclude_seen=False),
            NewUser(other, "d", ("i1",), (5.0,))]
    assert plan(jobs) == [[0, 1, 2], [3], [4], [5]]


# --- the schema under property tests ---------------------------------------------------------------------------------
def test_no_generated_request_gets_a_server_error(app):
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/reload")
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def no_5xx(case):
                response = case.call()
                assert response.status_code < 500, (case.body, response.text)
            try:
                no_5xx()
                tried += 1
            except Unsatisfiable:  # nothing to negate (GET /health)
                pass
    assert tried >= 9


# --- a real server -------------------------------------------------------------------------------------------------
def serve_client():
    """examples/serve_client.py as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("serve_client", REPO / "examples" / "serve_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_client_prints_a_list(monkeypatch, capsys):
    reply = {"items": [{"item_id": "i30", "score": 1.5, "label": "Item 30 (genre 4)"}], "ignored": ["nope"]}
    sent = []
    client_module = serve_client()
    monkeypatch.setattr(client_module, "call", lambda url, path, body, token: sent.append((path, body, token)) or reply)
    client_module.main(["--rate", "The Matrix (1999)=5", "--rate", "nope=1", "--k", "3", "--token", "t"])
    assert sent == [("/recommend", {"ratings": ratings((MATRIX, 5.0), ("nope", 1.0)), "k": 3}, "t")]
    assert "Item 30 (genre 4)" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, until, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if until(response):
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url}: not as expected within {timeout} s")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")
def test_a_server_process_reloads_on_sighup_and_stops_gracefully(own_model):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "coldstart", "serve", "--model", str(own_model), "--port",
                               str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = f"http://127.0.0.1:{port}/health"
        before = wait_for(health, lambda r: r.status_code == 200).json()["model"]["checksum"]
        ColdStartRecommender(CONFIG.replace(seed=7)).fit(synthetic(seed=2)).save(own_model)
        server.send_signal(signal.SIGHUP)
        wait_for(health, lambda r: r.json()["model"]["checksum"] != before, timeout=30)
        response = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"ratings": ratings(("i1", 5))})
        assert response.status_code == 200 and len(response.json()["items"]) == 10
        client_reply = serve_client().recommend(f"http://127.0.0.1:{port}", {"i1": 5, MATRIX: 4, "nope": 1}, k=3)
        assert len(client_reply["items"]) == 3 and client_reply["ignored"] == ["nope"]
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert "Finished server process" in output and "Traceback" not in output, output  # uvicorn's graceful stop
