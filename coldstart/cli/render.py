"""What the commands write: result tables (stdout or --output, atomically), `info`'s listing, and the item titles a
person types (`--rate "Toy Story (1995)=5"`) turned into ids."""
from __future__ import annotations

import difflib
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from ..recommender import ColdStartRecommender

FORMATS = ("table", "csv", "json", "parquet")
KNOWN = "log_p_known"  # `interview`'s score column: see INTERVIEW_SCORE
INTERVIEW_SCORE = (f"{KNOWN}: the adapted model's log-probability that the person knows the item (its log-softmax "
                   "over the catalogue, so at most 0; higher = more likely to be answered), lowered a little for an "
                   "item close to one asked before it.")
ARTICLES = ("the", "a", "an")  # MovieLens writes "The Matrix (1999)" as "Matrix, The (1999)"


# --- results -------------------------------------------------------------------------------------------------
def check_output(output: Path | None) -> None:
    """Refuse an --output that cannot be written, before any work (bad input: exit 1)."""
    if output is None:
        return
    if output.is_dir():
        raise ValueError(f"--output {output}: is a folder; expected a file name")
    if not output.parent.is_dir():
        raise ValueError(f"--output {output}: the folder {output.parent} does not exist")


def write_items(rec: ColdStartRecommender, df: pd.DataFrame, output: Path | None, fmt: str | None) -> None:
    """`write` a frame of items, with the model's item labels (titles) in table format."""
    write(df, output, fmt, labels=rec.item_label(df["item_id"].tolist()), label_name=rec.item_encoder_.label or "label")


def write(df: pd.DataFrame, output: Path | None, fmt: str | None, labels: list[str] | None = None,
          label_name: str = "label") -> None:
    """Write to --output atomically, else to stdout: a table on a terminal, CSV in a pipe."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    if output is None:
        fmt = fmt or ("table" if sys.stdout.isatty() else "csv")
        if fmt == "parquet":
            raise UsageError("--format parquet needs --output FILE")
        sys.stdout.write(render(df, fmt, labels, label_name))
        return
    fmt = fmt or {".json": "json", ".parquet": "parquet", ".pq": "parquet", ".txt": "table"}.get(
        output.suffix.lower(), "csv")
    from ..files import atomic_file
    if fmt == "parquet":
        atomic_file(output, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_file(output, lambda tmp: Path(tmp).write_text(render(df, fmt, labels, label_name)))


def render(df: pd.DataFrame, fmt: str, labels: list[str] | None, label_name: str) -> str:
    import pandas as pd
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=1) + "\n"
    table = df.assign(**{label_name: labels}) if labels is not None else df
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 200):
        return table.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n"


def items_phrase(catalogue: int, rated: int | None) -> str:
    """How `fit` and `info` both count items: the catalogue, which is the rated items and those with features only
    (a model scores all of them)."""
    if rated is None:
        return f"{catalogue:,} items in the catalogue"
    rest = "all rated" if rated == catalogue else f"{rated:,} rated, {catalogue - rated:,} with features only"
    return f"{catalogue:,} items in the catalogue ({rest})"


def info_lines(model: Path, meta: dict[str, Any]) -> list[str]:
    """`coldstart info`: what a model directory's model.json holds, one fact a line."""
    training = meta["training"]
    enc = [f"{f['name']} ({f['kind']})" for f in meta["item_encoder"]["fields"]]
    uenc = [f"{f['name']} ({f['kind']})" for f in meta["user_encoder"]["fields"]]
    stats = meta["rating_stats"]
    return [f"model            {model}",
            f"format version   {meta['format_version']} (coldstart {meta['coldstart_version']})",
            f"items            {items_phrase(len(meta['items']), training.get('n_rated_items'))}",
            f"users            {training.get('n_users', 0):,} in training, histories "
            f"{'kept' if 'user_history' in meta['files'] else 'left out (--no-user-history)'}",
            *(f"file             {f['name']} ({f['bytes']:,} bytes, sha256 {f['sha256']})"
              for f in meta["files"].values()),
            f"item features    {', '.join(enc) or '-'}", f"user features    {', '.join(uenc) or '-'}",
            f"item labels      {meta['item_encoder']['label'] or '-'}",
            f"rating scale     {stats['min']:g} .. {stats['max']:g} (mean {stats['mean']:.3f})",
            *(f"config.{k:<15} {v}" for k, v in meta["config"].items()),
            *(f"training.{k:<13} {v}" for k, v in training.items())]


# --- items a person names ------------------------------------------------------------------------------------
def answered(rec: ColdStartRecommender, rate: list[str] | None, unseen: list[str] | None,
             for_adaptation: bool = False) -> pd.DataFrame:
    """One ad-hoc user's answers: `--rate ITEM=RATING` rows and `--unseen ITEM` rows (rating NaN); with
    `for_adaptation`, as the support that adaptation sees (interview.answers_support: "not seen" as a dislike)."""
    import pandas as pd

    from ..interview import NEW_USER, answers_support
    skipped = pd.DataFrame({"user_id": NEW_USER, "item_id": [resolve_item(rec, i.strip(), "--unseen")
                                                             for i in unseen or []], "rating": float("nan")})
    rated = parse_rates(rec, rate) if rate else None
    answers = pd.concat([f for f in (rated, skipped) if f is not None and len(f)])
    if not for_adaptation:
        return answers
    support = answers_support(answers, rec.config.objective, rec.rating_stats_["min"])
    if support.empty:
        raise UsageError("--unseen alone: a model of ratings learns nothing from \"not seen\"; give --rate too")
    return support


def parse_rates(rec: ColdStartRecommender, rates: list[str]) -> pd.DataFrame:
    """`ITEM=RATING` pairs of one ad-hoc user; ITEM is an id, or an exact / unambiguous title."""
    import numpy as np
    import pandas as pd

    from ..io.values import SCALE_TOLERANCE, out_of_scale
    rows = []
    for text in rates:
        item, sep, value = text.rpartition("=")
        if not sep or not item:
            raise UsageError(f"--rate {text!r}: expected ITEM=RATING, e.g. --rate 50=5")
        try:
            rating = float(value)
        except ValueError:
            raise UsageError(f"--rate {text!r}: expected a number after '=', found {value!r}") from None
        if not math.isfinite(rating):
            raise UsageError(f"--rate {text!r}: expected a finite rating, found {value!r}")
        low, high = rec.rating_stats_["min"], rec.rating_stats_["max"]
        if high > low and out_of_scale(np.array([rating]), low, high)[0]:
            raise UsageError(f"--rate {text!r}: expected a rating on the model's scale {low:g} to {high:g} (give or "
                             f"take {SCALE_TOLERANCE * (high - low):g}), found {value!r}")
        rows.append({"user_id": "new-user", "item_id": resolve_item(rec, item.strip()), "rating": rating})
    return pd.DataFrame(rows)


def resolve_item(rec: ColdStartRecommender, item: str, option: str = "--rate") -> str:
    """The id of the item a person named: an id; an exact title; the title with its leading article moved as
    MovieLens writes it ("The Matrix (1999)" -> "Matrix, The (1999)") when one title has it; or the one title
    holding the text. No match: an error suggesting close titles; several: an error listing them."""
    import pandas as pd
    if item in rec.items_:
        return item
    if rec.item_labels_ is None:
        raise ValueError(f"{option}: the model knows no item {item!r} (it has ids only, no titles)")
    labels = pd.Series(rec.item_labels_)
    found = labels.index[labels == item]
    moved = article_moved(item)
    if not len(found) and moved is not None:
        found = labels.index[labels.str.lower() == moved.lower()]
    if not len(found):
        found = labels.index[labels.str.contains(item, case=False, regex=False)]
    if len(found) == 1:
        return rec.items_.ids([found[0]])[0]
    if len(found) == 0:
        close = "".join(f"\n  {rec.items_.ids([labels.index[labels == title][0]])[0]}: {title}"
                        for title in close_titles(item, labels.tolist()))
        raise ValueError(f"{option}: no item has the id or title {item!r}" + (f"; close titles:{close}" * bool(close)))
    shown = "\n  ".join(f"{rec.items_.ids([i])[0]}: {labels[i]}" for i in found[:10])
    raise ValueError(f"{option}: {item!r} matches {len(found)} titles; use one of these ids:\n  {shown}")


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


def read_pairs(path: Path) -> pd.DataFrame:
    from ..io import load_ratings
    return load_ratings(path)[["user_id", "item_id"]]
