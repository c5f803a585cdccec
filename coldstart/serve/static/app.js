// The onboarding page of `coldstart serve`: a new user answers the interview's questions (a rating, or
// "not seen"), or searches a title and rates it; the recommendations beside them follow every rating.
//
// State is the list of answers, in order: {item_id, rating} or {item_id, seen: false}. After each answer the
// page asks POST /interview for the next questions (all answers) and, after a rating, POST /recommend for the
// list (the ratings only: "not seen" is no rating; before any rating, the model's list for a brand-new user).
// A reply that arrives after a newer request of its kind is dropped. Tests: tests/test_serve_browser.py.
"use strict";

const N_QUESTIONS = 5;
const K = 10;
const SEARCH_LIMIT = 10;
const STARS = [1, 2, 3, 4, 5];

const state = {
  answers: [],            // {item_id, rating} | {item_id, seen: false}, in the order given
  labels: new Map(),      // item_id -> title, from every reply seen
  results: [],            // the last search's items
  latest: { questions: 0, recommend: 0, search: 0 },  // the newest request of each kind
};

const $ = (id) => document.getElementById(id);

// --- the API -----------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    const json = body === undefined ? undefined : JSON.stringify(body);
    response = await fetch(path, { method, headers, body: json });
  } catch (err) {
    throw new ApiError(0, `The server cannot be reached (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(response, data, text));
  if (data === null) throw new ApiError(response.status, `${method} ${path}: the answer is not JSON.`);
  return data;
}

// The server's own words: FastAPI's `detail` (a string, or a list of {loc, msg} for a malformed request).
function errorMessage(response, data, text) {
  const detail = data && typeof data === "object" ? data.detail : undefined;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : String(d))).join("; ");
  }
  if (detail) return JSON.stringify(detail);
  const status = `The server answered ${response.status} ${response.statusText}`.trim();
  return text ? `${status}: ${text.slice(0, 300)}` : status;
}

function showError(err) {
  const box = $("error");
  let message = err instanceof ApiError ? err.message : `Something went wrong: ${err.message || err}`;
  if (err.status === 401 || err.status === 403) {
    message += " Enter the server's access token under \u201cServer access\u201d.";
    $("access").open = true;
  }
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// Runs `request` as the newest of its kind; `render` gets its reply unless a newer one of that kind was made.
async function latest(kind, element, request, render) {
  const ticket = ++state.latest[kind];
  element.setAttribute("aria-busy", "true");
  try {
    const reply = await request();
    if (ticket === state.latest[kind]) render(reply);
  } catch (err) {
    if (ticket === state.latest[kind]) showError(err);
  } finally {
    if (ticket === state.latest[kind]) element.setAttribute("aria-busy", "false");
  }
}

function remember(items) {
  for (const item of items) {
    if (item.label) state.labels.set(item.item_id, item.label);
  }
  return items;
}

const labelOf = (itemId) => state.labels.get(itemId) || itemId;
const answerOf = (itemId) => state.answers.find((a) => a.item_id === itemId);
const ratings = () => state.answers.filter((a) => a.seen !== false)
  .map((a) => ({ item_id: a.item_id, rating: a.rating }));

// --- questions and answers -------------------------------------------------------------------------------
function loadQuestions() {
  const body = { answers: state.answers, n: N_QUESTIONS };
  return latest("questions", $("questions"), () => api("POST", "/interview", body), (reply) => {
    const questions = remember(reply.questions);
    $("questions").replaceChildren(...questions.map((q) => card(q.item_id, { notSeen: true })));
  });
}

function loadRecommendations() {
  const body = { ratings: ratings(), k: K, exclude_seen: true };
  return latest("recommend", $("recommendations"), () => api("POST", "/recommend", body), (reply) => {
    $("recs-note").hidden = body.ratings.length > 0;
    $("recommendations").replaceChildren(...remember(reply.items).map((item) => {
      const li = document.createElement("li");
      li.dataset.itemId = item.item_id;
      li.textContent = labelOf(item.item_id);
      return li;
    }));
  });
}

function answer(itemId, rating) {
  clearError();
  const entry = rating === null ? { item_id: itemId, seen: false } : { item_id: itemId, rating };
  state.answers = state.answers.filter((a) => a.item_id !== itemId).concat([entry]);
  for (const li of $("questions").querySelectorAll("li")) {
    if (li.dataset.itemId === itemId) li.remove();  // at once: the next questions may take a moment
  }
  renderAnswers();
  renderResults();
  loadQuestions();
  if (rating !== null) loadRecommendations();
}

function renderAnswers() {
  $("no-answers").hidden = state.answers.length > 0;
  $("answers").replaceChildren(...state.answers.map((a) => {
    const li = document.createElement("li");
    li.dataset.itemId = a.item_id;
    const title = document.createElement("span");
    title.textContent = labelOf(a.item_id);
    const given = document.createElement("span");
    given.className = "given";
    given.textContent = a.seen === false ? "not seen" : `${"\u2605".repeat(a.rating)} (${a.rating} of 5)`;
    li.append(title, given);
    return li;
  }));
}

// One item to answer: its title, five star buttons and, for a question, "Not seen".
function card(itemId, { notSeen }) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.itemId = itemId;
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = labelOf(itemId);
  const group = document.createElement("div");
  group.className = "answer";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", `Your rating of ${labelOf(itemId)}`);
  const stars = document.createElement("span");
  stars.className = "stars";
  const given = answerOf(itemId);
  for (const n of STARS) {
    const star = document.createElement("button");
    star.type = "button";
    star.className = "star";
    star.textContent = "\u2605";
    star.title = `${n} of 5`;
    star.setAttribute("aria-label", `${n} of 5 stars`);
    star.setAttribute("aria-pressed", String(Boolean(given && given.rating === n)));
    if (given && given.rating >= n) star.classList.add("on");
    star.addEventListener("click", () => answer(itemId, n));
    stars.append(star);
  }
  group.append(stars);
  if (notSeen) {
    const skip = document.createElement("button");
    skip.type = "button";
    skip.className = "not-seen";
    skip.textContent = "Not seen";
    skip.addEventListener("click", () => answer(itemId, null));
    group.append(skip);
  }
  li.append(title, group);
  return li;
}

// --- search ----------------------------------------------------------------------------------------------
function search() {
  clearError();
  const query = $("search").value.trim();
  if (!query) {
    state.latest.search++;
    state.results = [];
    renderResults();
    return Promise.resolve();
  }
  const path = `/items?query=${encodeURIComponent(query)}&limit=${SEARCH_LIMIT}`;
  return latest("search", $("results"), () => api("GET", path), (reply) => {
    state.results = remember(Array.isArray(reply) ? reply : reply.items);
    renderResults(query);
  });
}

function renderResults(query = $("search").value.trim()) {
  $("no-results").hidden = !query || state.results.length > 0;
  $("results").replaceChildren(...state.results.map((item) => card(item.item_id, { notSeen: false })));
}

// --- start -----------------------------------------------------------------------------------------------
function start() {
  const params = new URLSearchParams(window.location.search);
  if (params.has("token")) {
    $("token").value = params.get("token");
    params.delete("token");  // keep it out of the address bar and the history
    const rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : ""));
  }
  $("token").addEventListener("change", () => {
    clearError();
    loadQuestions();
    loadRecommendations();
  });
  let pending;
  $("search").addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(search, 250);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(pending);
    search();
  });
  renderAnswers();
  loadQuestions();
  loadRecommendations();
}

document.addEventListener("DOMContentLoaded", start);
