"""What the commands write: result tables (stdout or --output, atomically), `info`'s listing, and the answers a
person types (`--rate "Toy Story (1995)=5"`), their titles turned into ids by coldstart/titles.py."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..titles import article_moved, resolve_item  # noqa: F401 (article_moved: tests)
from .options import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from ..recommender import ColdStartRecommender

FORMATS = ("table", "csv", "json", "parquet")
KNOWN = "log_p_known"  # `interview`'s score column: see INTERVIEW_SCORE
INTERVIEW_SCORE = (f"{KNOWN}: the adapted model's log-probability that the person knows the item (its log-softmax "
                   "over the catalogue, so at most 0; higher = more likely to be answered), lowered a little for an "
                   "item close to one asked before it.")


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


def read_pairs(path: Path) -> pd.DataFrame:
    from ..io import load_ratings
    return load_ratings(path)[["user_id", "item_id"]]
