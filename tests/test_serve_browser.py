"""The onboarding page (coldstart/serve/static/) in a real browser: the system Chromium, driven by Playwright,
against the app served by uvicorn on a free port of 127.0.0.1, over a tiny model whose items have MovieLens
titles.

Every list the page shows is checked against what the API itself answers for the same answers, so the page's
state (its answers, which of them are ratings) is what is under test. Skips, saying why, without Chromium
(/usr/lib/chromium/chromium or `chromium` on PATH), Playwright, FastAPI or uvicorn.
`COLDSTART_SCREENSHOT=PATH` also writes the screenshot (docs/serve.png) there.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from coldstart import ColdStartRecommender, make_synthetic

from tests.conftest import BUNDLED, TINY

SERVE_EXTRA = "the page test needs the serve extra: pip install -e '.[serve]'"
pytest.importorskip("fastapi", reason=SERVE_EXTRA)
uvicorn = pytest.importorskip("uvicorn", reason=SERVE_EXTRA)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the page test needs Playwright: pip install -e '.[dev]'")
expect = sync_api.expect

CHROMIUM = next((path for path in ("/usr/lib/chromium/chromium", shutil.which("chromium"))
                 if path and Path(path).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium, as .ci/run")

N = 5  # questions the page asks at a time (app.js: N_QUESTIONS)
K = 10  # recommendations it shows (app.js: K)
TOKEN = "s3cret-token"


# --- the server and the browser -----------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    token: str | None = None

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = "default") -> tuple:
        """(status, JSON reply) of one API call made outside the browser."""
        token = self.token if token == "default" else token
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def post(self, path: str, body: dict) -> dict:
        status, reply = self.call("POST", path, body)
        assert status == 200, reply
        return reply

    def recommend(self, answers: list[dict]) -> list[str]:
        """The ids POST /recommend gives for the ratings among `answers` (as the page sends them)."""
        ratings = [a for a in answers if a.get("seen", True)]
        reply = self.post("/recommend", {"ratings": ratings, "k": K, "exclude_seen": True})
        return [item["item_id"] for item in reply["items"]]

    def questions(self, answers: list[dict]) -> list[str]:
        return [q["item_id"] for q in self.post("/interview", {"answers": answers, "n": N})["questions"]]


@pytest.fixture(scope="module")
def titled(tmp_path_factory):
    """A tiny model folder whose items carry the first MovieLens titles; and those titles by item id."""
    data = make_synthetic(n_users=60, n_items=40, ratings_per_user=(6, 15), seed=3)
    movies = pd.read_csv(BUNDLED / "ml-latest-small" / "movies.csv", nrows=len(data.items))
    data.items["title"] = movies["title"].to_numpy()
    path = tmp_path_factory.mktemp("serve-page") / "model"
    ColdStartRecommender(TINY).fit(data).save(path)
    return path, dict(zip(data.items["item_id"], data.items["title"]))


def start(model: Path, token: str | None = None):
    """The app on a free port of 127.0.0.1, served by uvicorn in a daemon thread; (Server, stop)."""
    from coldstart.serve import create_app
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(model, token=token), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(10)
        sock.close()
    return Server(f"http://127.0.0.1:{sock.getsockname()[1]}", token), stop


@pytest.fixture(scope="module")
def server(titled):
    served, stop = start(titled[0])
    yield served
    stop()


@pytest.fixture(scope="module")
def titles(titled):
    return titled[1]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page at 1280x800 and what it logged: console errors, uncaught exceptions, its API requests."""
    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[tuple] = field(default_factory=list)  # (method, path, JSON body or None, headers)
    http_errors_expected: bool = False  # a test of error replies: the browser logs each failed request

    def sent(self, path: str) -> list[dict | None]:
        return [body for _, p, body, _ in self.requests if p == path]


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    tab = Tab(page)
    page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    page.on("request", lambda r: r.resource_type == "fetch" and tab.requests.append(
        (r.method, urllib.parse.urlsplit(r.url).path, r.post_data_json if r.post_data else None, r.headers)))
    yield tab
    context.close()
    unexpected = [e for e in tab.errors
                  if not (tab.http_errors_expected and e.startswith("Failed to load resource"))]
    assert not unexpected, f"the page logged errors: {unexpected}"


# --- reading and using the page -----------------------------------------------------------------------------
def ids(page, selector: str) -> list[str]:
    """The item ids of the elements at `selector` (each, or the list entry holding it, has `data-item-id`)."""
    return page.locator(selector).evaluate_all(
        "els => els.map(e => e.closest('[data-item-id]').dataset.itemId)")


def shows(page, selector: str, expected: list[str], titles: dict) -> None:
    """Waits until the list at `selector` shows the titles of `expected`, in order, then checks its ids."""
    expect(page.locator(selector)).to_have_text([titles[i] for i in expected])
    assert ids(page, selector) == expected


def open_page(tab: Tab, server: Server, titles: dict) -> None:
    """The page, once its first questions and list are in."""
    tab.page.goto(server.url + "/")
    shows(tab.page, "#questions li .title", server.questions([]), titles)
    shows(tab.page, "#recommendations li", server.recommend([]), titles)


def rate(page, where: str, item: str, stars: int) -> None:
    """Clicks the star button named "`stars` of 5 stars" of `item` in the list `where`."""
    entry = page.locator(f'{where} li[data-item-id="{item}"]')
    entry.get_by_role("button", name=f"{stars} of 5 stars").click()


def not_seen(page, item: str) -> None:
    page.locator(f'#questions li[data-item-id="{item}"]').get_by_role("button", name="Not seen").click()


# --- the tests ---------------------------------------------------------------------------------------------
def test_the_first_questions_come_with_titles_and_buttons_to_answer(tab, server, titles):
    open_page(tab, server, titles)  # the questions and list are the API's, shown by title
    first = tab.page.locator("#questions li").first
    buttons = first.get_by_role("button")
    expect(buttons).to_have_count(6)
    assert buttons.all_inner_texts()[-1] == "Not seen"
    title = titles[ids(tab.page, "#questions li")[0]]
    expect(first.get_by_role("group")).to_have_attribute("aria-label", f"Your rating of {title}")
    assert tab.sent("/interview") == [{"answers": [], "n": N}]
    expect(tab.page.get_by_label("Search titles")).to_be_visible()


def test_each_rating_updates_the_list_to_what_the_api_recommends_and_the_next_questions(tab, server, titles):
    page, answers = tab.page, []
    open_page(tab, server, titles)
    note = page.get_by_text("What most people start with")
    expect(note).to_be_visible()  # the list before any rating is the model's for a brand-new user
    for stars in (5, 1):
        before = ids(page, "#recommendations li")
        item = ids(page, "#questions li")[0]
        rate(page, "#questions", item, stars)
        answers.append({"item_id": item, "rating": stars})
        expected = server.recommend(answers)
        assert expected != before, "the answer should change this list (else the test shows nothing)"
        shows(page, "#recommendations li", expected, titles)
        shows(page, "#questions li .title", server.questions(answers), titles)
        assert tab.sent("/recommend")[-1] == {"ratings": answers, "k": K, "exclude_seen": True}
    expect(note).to_be_hidden()
    expect(page.locator("#answers li")).to_have_count(2)
    expect(page.locator("#answers li").nth(1)).to_contain_text("1 of 5")


def test_not_seen_brings_new_questions_never_an_item_answered_and_is_no_rating(tab, server, titles):
    page, answers = tab.page, []
    open_page(tab, server, titles)
    for given in (None, 4, None, None, 2, None):
        shown, recs = ids(page, "#questions li"), ids(page, "#recommendations li")
        n_recommend = len(tab.sent("/recommend"))
        item = shown[0]
        if given is None:
            not_seen(page, item)
            answers.append({"item_id": item, "seen": False})
        else:
            rate(page, "#questions", item, given)
            answers.append({"item_id": item, "rating": given})
        expected = server.questions(answers)
        assert expected != shown
        shows(page, "#questions li .title", expected, titles)
        assert tab.sent("/interview")[-1] == {"answers": answers, "n": N}
        asked_again = {a["item_id"] for a in answers} & set(ids(page, "#questions li"))
        assert not asked_again, "an answered item is asked again"
        if given is None:  # no rating: the list stays, and nothing asks for a new one
            assert len(tab.sent("/recommend")) == n_recommend
            assert ids(page, "#recommendations li") == recs
        else:
            shows(page, "#recommendations li", server.recommend(answers), titles)
    unseen = {a["item_id"] for a in answers if a.get("seen") is False}
    assert all(r["item_id"] not in unseen for body in tab.sent("/recommend") for r in body["ratings"])
    expect(page.locator("#answers li", has_text="not seen")).to_have_count(len(unseen))


def test_a_searched_title_rated_leaves_the_list_and_the_list_follows(tab, server, titles, tmp_path):
    page = tab.page
    open_page(tab, server, titles)
    first = ids(page, "#questions li")[0]
    rate(page, "#questions", first, 5)
    answers = [{"item_id": first, "rating": 5}]
    shows(page, "#recommendations li", server.recommend(answers), titles)
    wanted = ids(page, "#recommendations li")[0]  # the top one: rating it must take it off the list
    query = titles[wanted].rsplit(" (", 1)[0].lower()  # "toy story", as a person types it
    page.get_by_label("Search titles").fill(query)  # typing searches: no button press
    status, found = server.call("GET", f"/items?query={urllib.parse.quote(query)}&limit=10")
    assert status == 200, found
    shows(page, "#results li .title", [i["item_id"] for i in found["items"]], titles)
    buttons = page.locator("#results li .answer button")
    expect(buttons).to_have_count(5 * len(found["items"]))  # stars only: no "not seen" for a title searched
    rate(page, "#results", wanted, 4)
    answers.append({"item_id": wanted, "rating": 4})
    expected = server.recommend(answers)
    assert wanted not in expected
    shows(page, "#recommendations li", expected, titles)
    shows(page, "#questions li .title", server.questions(answers), titles)
    expect(page.locator(f'#results li[data-item-id="{wanted}"] [aria-pressed="true"]')).to_have_attribute(
        "aria-label", "4 of 5 stars")
    expect(page.locator("#answers li").nth(1)).to_contain_text(titles[wanted])
    screenshot(page, tmp_path / "serve.png")
    page.get_by_label("Search titles").fill("qqxzzq")
    expect(page.get_by_text("No title matches.")).to_be_visible()
    expect(page.locator("#results li")).to_have_count(0)
    page.get_by_label("Search titles").fill("")  # an empty box: no results, no note, and no request (a 422)
    expect(page.get_by_text("No title matches.")).to_be_hidden()
    assert [p for _, p, *_ in tab.requests].count("/items") == 2


def screenshot(page, path: Path) -> None:
    """The page as it is now, at `path` (printed) and, with COLDSTART_SCREENSHOT set, there too."""
    page.locator("#search").blur()
    page.screenshot(path=path)
    print(f"screenshot: {path}")
    if os.environ.get("COLDSTART_SCREENSHOT"):
        shutil.copyfile(path, os.environ["COLDSTART_SCREENSHOT"])
        print(f"screenshot: {os.environ['COLDSTART_SCREENSHOT']}")


def test_the_page_fits_1280_by_800_with_the_list_beside_the_questions(tab, server, titles):
    page = tab.page
    open_page(tab, server, titles)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    ask, recs = page.locator("#ask").bounding_box(), page.locator("#recommend").bounding_box()
    assert recs["x"] >= ask["x"] + ask["width"] and recs["y"] < 800 and ask["y"] < 800
    for item in ids(page, "#questions li"):  # every question's buttons on screen, without scrolling
        assert page.locator(f'#questions li[data-item-id="{item}"] .not-seen').bounding_box()["y"] < 800


def test_api_errors_show_their_detail_in_the_page(tab, server):
    page, tab.http_errors_expected = tab.page, True
    error = page.get_by_role("alert")
    invalid = {"detail": [{"loc": ["body", "ratings", 0, "rating"], "type": "value_error",
                           "msg": "expected a rating on the model's scale"}]}
    page.route("**/recommend", lambda route: route.fulfill(status=422, json=invalid))
    page.goto(server.url + "/")
    expect(error).to_have_text("body.ratings.0.rating: expected a rating on the model's scale")
    page.unroute("**/recommend")
    page.route("**/interview",
               lambda route: route.fulfill(status=502, body="Bad gateway", content_type="text/plain"))
    page.reload()
    expect(error).to_have_text("The server answered 502 Bad Gateway: Bad gateway")  # not JSON: never a blank
    page.unroute("**/interview")
    page.reload()
    expect(page.locator("#questions li")).to_have_count(N)
    expect(error).to_be_hidden()
    status, refused = server.call("GET", "/items?query=" + "x" * 201)  # the real server's 422, in the page
    assert status == 422
    detail = refused["detail"][0]
    box = page.get_by_label("Search titles")
    box.fill("x" * 201)  # typing searches
    expect(error).to_have_text(".".join(map(str, detail["loc"])) + ": " + detail["msg"])
    box.fill("toy")  # the next search clears the message
    expect(page.locator("#results li")).not_to_have_count(0)
    expect(error).to_be_hidden()
    box.evaluate("(e, text) => { e.value = text; }", "x" * 201)  # set without typing: the button searches
    page.get_by_role("button", name="Search").click()
    expect(error).to_have_text(".".join(map(str, detail["loc"])) + ": " + detail["msg"])
    rate(page, "#questions", ids(page, "#questions li")[0], 3)  # the next answer clears the message
    expect(error).to_be_hidden()


def test_a_late_reply_never_overwrites_a_newer_one(tab, server, titles):
    page, held = tab.page, {}
    open_page(tab, server, titles)

    def hold_first(route):  # the first /interview and the first /recommend: let through after the second
        path = urllib.parse.urlsplit(route.request.url).path
        route.continue_() if path in held else held.setdefault(path, route)
    page.route("**/interview", hold_first)
    page.route("**/recommend", hold_first)
    first, second = ids(page, "#questions li")[:2]
    rate(page, "#questions", first, 5)
    expect(page.locator(f'#questions li[data-item-id="{first}"]')).to_have_count(0)  # gone before any reply
    rate(page, "#questions", second, 1)
    answers = [{"item_id": first, "rating": 5}, {"item_id": second, "rating": 1}]
    shows(page, "#recommendations li", server.recommend(answers), titles)
    shows(page, "#questions li .title", server.questions(answers), titles)
    assert len(held) == 2 and server.recommend(answers[:1]) != server.recommend(answers)
    for route in held.values():
        with page.expect_event("requestfinished"):
            route.continue_()
    page.wait_for_timeout(300)  # the page reads the late replies
    assert ids(page, "#recommendations li") == server.recommend(answers)
    assert ids(page, "#questions li") == server.questions(answers)


def test_with_a_token_the_page_asks_for_it_then_sends_it(tab, titled, titles):
    page, tab.http_errors_expected = tab.page, True
    guarded, stop = start(titled[0], token=TOKEN)
    try:
        status, refused = guarded.call("POST", "/interview", {"answers": [], "n": N}, token=None)
        assert status == 401
        page.goto(guarded.url + "/")
        expect(page.get_by_role("alert")).to_contain_text(refused["detail"])
        expect(page.locator("#access")).to_have_attribute("open", "")
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_label("Access token").press("Tab")
        shows(page, "#questions li .title", guarded.questions([]), titles)
        expect(page.get_by_role("alert")).to_be_hidden()

        tab.requests.clear()
        page.goto(guarded.url + f"/?token={TOKEN}")
        shows(page, "#questions li .title", guarded.questions([]), titles)
        shows(page, "#recommendations li", guarded.recommend([]), titles)
        assert "token" not in page.url  # kept out of the address bar and history
        assert tab.requests and all(h.get("authorization") == f"Bearer {TOKEN}" for *_, h in tab.requests)
    finally:
        stop()
