"""Items a person names: an id, or a title as typed ("The Matrix (1999)"), turned into the model's item ids.

Shared by the command line (`--rate "Toy Story (1995)=5"`) and the HTTP API (ratings by title, the search box of
`GET /items`). MovieLens writes a leading article at the end ("Matrix, The (1999)"); a title typed with it in front
finds that one.
"""
from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recommender import ColdStartRecommender

ARTICLES = ("the", "a", "an")  # MovieLens writes "The Matrix (1999)" as "Matrix, The (1999)"


def title_matches(rec: ColdStartRecommender, item: str) -> list[str]:
    """The ids of the items `item` names: itself when it is an id; else the items titled exactly so; else those
    whose title is it with its leading article moved as MovieLens writes it; else those whose title holds it (any
    case). Empty when none does (or the model has no titles)."""
    import pandas as pd
    if item in rec.items_:
        return [item]
    if rec.item_labels_ is None:
        return []
    labels = pd.Series(rec.item_labels_)
    found = labels.index[labels == item]
    moved = article_moved(item)
    if not len(found) and moved is not None:
        found = labels.index[labels.str.lower() == moved.lower()]
    if not len(found):
        found = labels.index[labels.str.contains(item, case=False, regex=False)]
    return rec.items_.ids(found.to_numpy()).tolist() if len(found) else []


def resolve_item(rec: ColdStartRecommender, item: str, option: str = "--rate") -> str:
    """The id of the one item `item` names (`title_matches`). No match: a ValueError suggesting close titles;
    several: a ValueError listing them. `option` starts the message (what named the item)."""
    found = title_matches(rec, item)
    if len(found) == 1:
        return found[0]
    if rec.item_labels_ is None:
        raise ValueError(f"{option}: the model knows no item {item!r} (it has ids only, no titles)")
    if not found:
        close = "".join(f"\n  {i}: {title}" for i, title in close_items(rec, item))
        raise ValueError(f"{option}: no item has the id or title {item!r}" + (f"; close titles:{close}" * bool(close)))
    shown = "\n  ".join(f"{i}: {label}" for i, label in zip(found[:10], rec.item_label(found[:10])))
    raise ValueError(f"{option}: {item!r} matches {len(found)} titles; use one of these ids:\n  {shown}")


def search_items(rec: ColdStartRecommender, query: str, limit: int = 10) -> list[str]:
    """Up to `limit` item ids for a search box: the id itself, then the items whose title (or, without titles, id)
    holds `query`, any case, in catalogue order; then close titles (`close_titles`: "The Matrix" finds "Matrix,
    The (1999)", "Matirx" too)."""
    import pandas as pd
    names = pd.Series(rec.item_labels_ if rec.item_labels_ is not None else rec.items_.to_list()).str.lower()
    hits = names.index[names.str.contains(query.lower(), regex=False)]
    found = ([query] if query in rec.items_ else []) + rec.items_.ids(hits.to_numpy()).tolist()
    if len(found) < limit and rec.item_labels_ is not None:
        found += [i for i, _ in close_items(rec, query, limit)]
    return list(dict.fromkeys(found))[:limit]


def close_items(rec: ColdStartRecommender, item: str, n: int = 5) -> list[tuple[str, str]]:
    """(id, title) of the `n` items titled closest to `item` (`close_titles`), closest first."""
    labels = list(rec.item_labels_ or [])
    first = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    titles = close_titles(item, labels, n)
    return list(zip(rec.items_.ids([first[t] for t in titles]).tolist(), titles))


def close_titles(item: str, labels: list[str], n: int = 5) -> list[str]:
    """The `n` labels closest to `item` (difflib's similarity, at least 0.6), closest first, compared whole and as
    bare names (no article, leading or moved, and no year: "The Matrix (2000)" is close to "Matrix, The (1999)")."""
    by_name: dict[str, list[str]] = {}
    for label in labels:
        by_name.setdefault(bare_name(label), []).append(label)
    found = set(difflib.get_close_matches(item, labels, n=n))
    for name in difflib.get_close_matches(bare_name(item), list(by_name), n=n):
        found.update(by_name[name])

    def similarity(label: str) -> float:
        return max(difflib.SequenceMatcher(None, a, b).ratio() for a, b in ((item, label),
                                                                            (bare_name(item), bare_name(label))))

    return sorted(found, key=lambda label: (-similarity(label), label))[:n]


def bare_name(title: str) -> str:
    """A title without its article (leading or moved to the end) or trailing parenthesis, in lower case."""
    name = re.sub(r"\s*\([^()]*\)$", "", title.strip())
    name = re.sub(rf",\s*({'|'.join(ARTICLES)})$", "", name, flags=re.IGNORECASE)
    return re.sub(rf"^({'|'.join(ARTICLES)})\s+", "", name, flags=re.IGNORECASE).lower()


def article_moved(title: str) -> str | None:
    """"The Matrix (1999)" -> "Matrix, The (1999)" (the article before a trailing parenthesis); None without a
    leading article."""
    first, _, rest = title.strip().partition(" ")
    if first.lower() not in ARTICLES or not rest.strip():
        return None
    name, year = re.fullmatch(r"(.*?)(\s*\([^()]*\))?", rest.strip()).groups()
    return f"{name}, {first}{year or ''}"
