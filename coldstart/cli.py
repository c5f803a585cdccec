"""The `coldstart` command: a thin Typer layer over the Python API. Only this module prints.

Exit codes: 0 success, 1 bad input (data, model or config), 2 bad usage.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from .config import Config, ConfigError
from .data import DataError, load_features, load_ratings
from .evaluation import Protocol, default_systems, format_table, run_seeds, write_report
from .formats import load_dataset
from .train import StepReport
from .files import atomic_file
from .persist import ModelFormatError, read_metadata
from .recommender import ColdStartRecommender, NotFittedError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Meta-learned recommendations for users with a handful of ratings.")
BAD_INPUT = (DataError, ConfigError, ModelFormatError, NotFittedError, ValueError, KeyError, FileNotFoundError)
FORMATS = ("table", "csv", "json", "parquet")
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "ml-latest-small"  # in a checkout; see _bundled

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes on stderr.")]
ModelDir = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `coldstart fit`.")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here (format from --format or the "
                                                "extension) instead of stdout.")]
Format = Annotated[Optional[str], typer.Option("--format", "-f", help="table, csv, json or parquet.")]
UserCol = Annotated[str, typer.Option("--user-col", help="Name of the user id column in RATINGS.")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Name of the item id column in RATINGS.")]
RatingCol = Annotated[str, typer.Option("--rating-col", help="Name of the rating column (absent: implicit).")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Name of the timestamp column.")]
ItemsFile = Annotated[Optional[Path], typer.Option("--items", help="Item features file.")]
UsersFile = Annotated[Optional[Path], typer.Option("--users", help="User features file.")]
Objective = Annotated[Optional[str], typer.Option(help="implicit (rank the catalogue) or rating.")]
Epochs = Annotated[Optional[int], typer.Option(help="Passes over the training users.")]
Device = Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.")]
Seed = Annotated[Optional[int], typer.Option(help="Seed of every random draw (and of the split).")]
Learner = Annotated[Optional[str], typer.Option(help="maml (default), fomaml, metasgd, proximal, reptile or encoder: "
                                                "how users are adapted and the initialisation learns.")]
Threads = Annotated[Optional[int], typer.Option(min=1, help="torch CPU threads (default: 1 for fit and evaluate, "
                                                "whose small tensors run fastest on one; torch's own choice for "
                                                "recommend and predict, which score whole catalogues).")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="TOML file of config keys.")]


def main() -> None:
    """Console-script entry point."""
    app()


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def setup(quiet: bool, threads: int | None = None) -> None:
    """Messages to stderr (errors only with --quiet); torch's CPU thread count when given."""
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s: %(message)s", force=True)
    if threads is not None:
        import torch
        torch.set_num_threads(threads)


@app.command()
def fit(
    ratings: Annotated[Optional[Path], typer.Argument(help="Ratings file or a known dataset folder (MovieLens, "
                                                      "RecBole); default: the bundled MovieLens latest-small.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")] = Path("model"),
    items: ItemsFile = None, users: UsersFile = None, objective: Objective = None, epochs: Epochs = None,
    inner_steps: Annotated[Optional[int], typer.Option(help="SGD steps of adaptation per user.")] = None,
    learner: Learner = None,
    validation_fraction: Annotated[Optional[float], typer.Option(
        help="Hold out this share of the training users (the newest) and keep the epoch they score best.")] = None,
    device: Device = None, seed: Seed = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Meta-train a model on RATINGS and write it to --out."""
    setup(quiet, threads or 1)
    try:
        cfg = _config(config, objective=objective, epochs=epochs, inner_steps=inner_steps, learner=learner,
                      validation_fraction=validation_fraction, device=device, seed=seed)
        dataset = load_dataset(ratings or _bundled(), items=items, users=users, user_col=user_col,
                               item_col=item_col, rating_col=rating_col, time_col=time_col)
        _note(quiet, f"fitting on {dataset.name}: {len(dataset.ratings):,} ratings, "
                     f"{dataset.ratings['user_id'].nunique():,} users, {dataset.ratings['item_id'].nunique():,} items")
        with _progress(quiet) as on_step:
            rec = ColdStartRecommender(cfg).fit(dataset, on_step=on_step)
        rec.save(out)
    except BAD_INPUT as exc:
        fail(_message(exc))
    s = rec.summary_
    _note(quiet, f"saved {out}: {s['tasks']:,} tasks in {s['seconds']:.1f}s ({s['tasks_per_s']:,.0f} tasks/s) "
                 f"on {s['device']}; final query loss {s['epoch_query_loss'][-1]:.4f}")
    if s.get("best_epoch") is not None:
        kept = s["valid_query_loss"][s["best_epoch"]]
        _note(quiet, f"kept epoch {s['best_epoch']} of {s['epochs']}: held-out query loss {kept:.4f} "
                     f"({s['valid_users']:,} held-out users)")


@app.command()
def recommend(
    model: ModelDir = Path("model"),
    user: Annotated[Optional[list[str]], typer.Option("--user", help="A known user (repeatable): adapt on their "
                                                      "logged ratings.")] = None,
    ratings: Annotated[Optional[Path], typer.Option("--ratings", help="Support ratings of one or many new users.")
                       ] = None,
    rate: Annotated[Optional[list[str]], typer.Option("--rate", help="ITEM=RATING for one ad-hoc new user "
                                                      "(repeatable); ITEM may be an exact title.")] = None,
    users: Annotated[Optional[Path], typer.Option("--users", help="Features of the new users in --ratings.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Items per user.")] = 10,
    exclude_seen: Annotated[bool, typer.Option("--exclude-seen/--include-seen",
                                               help="Leave out the items of the support set.")] = True,
    output: Output = None, fmt: Format = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Top-k items for known users, for a file of new users (one batched pass), or for one ad-hoc user."""
    setup(quiet, threads)
    if sum(x is not None and x != [] for x in (user, ratings, rate)) != 1:
        fail("give exactly one of --user, --ratings or --rate", code=2)
    try:
        rec = ColdStartRecommender.load(model)
        if user:
            recs = rec.recommend_known(user, k=k, exclude_seen=exclude_seen)
        else:
            support = (_parse_rates(rec, rate) if rate else
                       load_ratings(ratings, user_col=user_col, item_col=item_col, rating_col=rating_col))
            feats = load_features(users, id_col=user_col, kind="user") if users else None
            recs = rec.recommend(support, k=k, exclude_seen=exclude_seen, users=feats)
        labels = rec.item_label(recs["item_id"].tolist())
        _write(recs, output, fmt, labels=labels, label_name=rec.item_encoder_.label or "label")
    except BAD_INPUT as exc:
        fail(_message(exc))


@app.command()
def predict(
    model: ModelDir = Path("model"),
    ratings: Annotated[Path, typer.Option("--ratings", help="Support ratings: each user is adapted on its rows.")
                       ] = ...,
    pairs: Annotated[Path, typer.Option("--pairs", help="user_id, item_id pairs to score.")] = ...,
    output: Output = None, fmt: Format = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Predictions for (user, item) pairs, each user adapted on its support ratings."""
    setup(quiet, threads)
    try:
        rec = ColdStartRecommender.load(model)
        preds = rec.predict(load_ratings(ratings), _read_pairs(pairs))
        _write(preds, output, fmt)
    except BAD_INPUT as exc:
        fail(_message(exc))


@app.command()
def evaluate(
    ratings: Annotated[Optional[Path], typer.Argument(help="Ratings file or known dataset folder; default: the "
                                                      "bundled MovieLens latest-small.")] = None,
    items: ItemsFile = None, users: UsersFile = None,
    shots: Annotated[str, typer.Option(help="Support sizes, comma-separated.")] = "1,3,5,10",
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Length of the ranked lists.")] = 10,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for report.csv/json/png and the split.")
                      ] = Path("evaluation"),
    new_fraction: Annotated[float, typer.Option(help="Share of users (the newest) held out as new users.")] = 0.2,
    threshold: Annotated[float, typer.Option(help="Query ratings >= this are relevant (implicit data: all).")
                         ] = 4.0,
    item_split: Annotated[Optional[str], typer.Option(help="COLUMN:CUTOFF, e.g. year:1997: MeLU's four scenarios, "
                                                      "items whose COLUMN >= CUTOFF being the new items.")] = None,
    objective: Objective = None, epochs: Epochs = None, device: Device = None, seed: Seed = None,
    learners: Annotated[Optional[str], typer.Option(help="Several learners, comma-separated (e.g. maml,reptile): "
                                                    "each is fitted and scored; the first is `coldstart` in the "
                                                    "paired table.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Several seeds, comma-separated: the whole protocol runs once "
                                                 "per seed and the table shows mean ± sd.")] = None,
    config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """The cold-start protocol: coldstart and the baselines on the same split, one report."""
    setup(quiet, threads or 1)
    try:
        if seeds is not None and seed is not None:
            raise ValueError("--seed and --seeds: give one of them")
        cfg = _config(config, objective=objective, epochs=epochs, device=device, seed=seed)
        seed_list = _int_list(seeds, "--seeds", low=0) if seeds is not None else [cfg.seed]
        protocol = Protocol(shots=_int_list(shots, "--shots"), k=k, new_fraction=new_fraction,
                            threshold=threshold, seed=cfg.seed, item_split=_item_split(item_split))
        dataset = load_dataset(ratings or _bundled(), items=items, users=users, user_col=user_col,
                               item_col=item_col, rating_col=rating_col, time_col=time_col)
        learner_list = _name_list(learners, "--learners") if learners else None
        for name in learner_list or []:  # every name checked before any fit
            cfg.replace(learner=name)
        if learner_list:
            cfg = cfg.replace(learner=learner_list[0])
        with _progress(quiet) as on_step:
            report = run_seeds(dataset, cfg, protocol, seed_list,
                               lambda c: default_systems(c, on_step, learners=learner_list),
                               on_progress=lambda m: _note(quiet, m))
        files = write_report(report, output)
    except BAD_INPUT as exc:
        fail(_message(exc))
    typer.echo(format_table(report))
    _note(quiet, "wrote " + ", ".join(str(f) for f in files))


@app.command()
def info(model: ModelDir = Path("model")) -> None:
    """What a model directory holds: sizes, config, training summary."""
    try:
        meta = read_metadata(model)
    except BAD_INPUT as exc:
        fail(_message(exc))
    enc = [f"{f['name']} ({f['kind']})" for f in meta["item_encoder"]["fields"]]
    uenc = [f"{f['name']} ({f['kind']})" for f in meta["user_encoder"]["fields"]]
    lines = [f"model            {model}", f"format version   {meta['format_version']} "
             f"(coldstart {meta['coldstart_version']})", f"items            {len(meta['items']):,}",
             f"users            {len(meta['users']):,}", f"item features    {', '.join(enc) or '-'}",
             f"user features    {', '.join(uenc) or '-'}", f"item labels      {meta['item_encoder']['label'] or '-'}",
             f"rating scale     {meta['rating_stats']['min']:g} .. {meta['rating_stats']['max']:g} "
             f"(mean {meta['rating_stats']['mean']:.3f})"]
    cfg = Config.from_dict(meta["config"])
    auto = {"inner_lr": cfg.step_size(),  # what an unset (None) field resolved to
            "use_item_ids": cfg.uses_item_ids(has_item_features=bool(meta["item_encoder"]["fields"])),
            "user_bias_scale": cfg.uses_bias_scale(), "dislike_below": meta["objective"].get("dislike_below")}
    lines += [f"config.{k:<15} {v}" + (f" (auto: {auto[k]})" if v is None and k in auto else "")
              for k, v in meta["config"].items()]
    lines += [f"training.{k:<13} {v}" for k, v in meta["training"].items()]
    typer.echo("\n".join(lines))


# --- helpers -------------------------------------------------------------------------------------------------
def _config(path: Path | None, **flags) -> Config:
    """The config file's values (or the defaults), overridden by the command-line flags that were given."""
    cfg = Config.from_toml(path) if path else Config()
    return cfg.replace(**{k: v for k, v in flags.items() if v is not None})


def _int_list(text: str, option: str, low: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated integers such as 1,3,5,10, found {text!r}") from None
    if low is not None and min(values) < low:
        raise ValueError(f"{option}: expected integers >= {low}, found {text!r}")
    if len(set(values)) < len(values):
        raise ValueError(f"{option}: expected distinct values, found {text!r}")
    return values


def _name_list(text: str, option: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names or len(set(names)) < len(names):
        raise ValueError(f"{option}: expected distinct comma-separated names such as maml,reptile, found {text!r}")
    return names


def _item_split(text: str | None) -> tuple[str, float] | None:
    if text is None:
        return None
    column, _, cutoff = text.rpartition(":")
    try:
        value = float(cutoff)
    except ValueError:
        value = None
    if not column or value is None:
        raise ValueError(f"--item-split: expected COLUMN:CUTOFF such as year:1997, found {text!r}")
    return column, value


def _bundled() -> Path:
    """MovieLens latest-small: the wheel ships it as coldstart/_data (pyproject.toml maps the repo's data/
    there); an editable install or a bare checkout has no coldstart/_data and reads data/ itself (BUNDLED)."""
    from importlib.resources import files

    candidates = (Path(str(files("coldstart") / "_data" / "ml-latest-small")), BUNDLED)
    for folder in candidates:
        if (folder / "ratings.csv").is_file():
            return folder
    raise FileNotFoundError(f"the bundled data is in neither {candidates[0]} nor {candidates[1]}: reinstall "
                            "coldstart-rec, or give a RATINGS file")


def _note(quiet: bool, message: str) -> None:
    if not quiet:
        typer.echo(message, err=True)


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)


class _progress:
    """A rich progress bar on a terminal (stderr); nothing in pipes or with --quiet."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} tasks/s"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task = None
        return self.update

    def update(self, r: StepReport) -> None:
        if self.task is None or (r.epoch == 0 and r.step == 0):  # a new fit starts a new bar
            self.task = self.bar.add_task("fit", total=r.steps_per_epoch * r.epochs, epoch="", loss=0.0, rate=0.0)
        self.bar.update(self.task, advance=1, epoch=f"{r.epoch + 1}/{r.epochs}", loss=r.loss, rate=r.tasks_per_s)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


def _parse_rates(rec: ColdStartRecommender, rates: list[str]) -> pd.DataFrame:
    """`ITEM=RATING` pairs of one ad-hoc user; ITEM is an id, or an exact / unambiguous title."""
    rows = []
    for text in rates:
        item, sep, value = text.rpartition("=")
        if not sep or not item:
            raise ValueError(f"--rate {text!r}: expected ITEM=RATING, e.g. --rate 50=5")
        try:
            rating = float(value)
        except ValueError:
            raise ValueError(f"--rate {text!r}: expected a number after '=', found {value!r}") from None
        rows.append({"user_id": "new-user", "item_id": _resolve_item(rec, item.strip()), "rating": rating})
    return pd.DataFrame(rows)


def _resolve_item(rec: ColdStartRecommender, item: str) -> str:
    if item in rec.items_ or rec.item_labels_ is None:
        return item
    labels = pd.Series(rec.item_labels_)
    exact = labels.index[labels == item]
    found = exact if len(exact) else labels.index[labels.str.contains(item, case=False, regex=False)]
    if len(found) == 1:
        return rec.items_.ids([found[0]])[0]
    if len(found) == 0:
        raise ValueError(f"--rate: no item has the id or title {item!r}")
    shown = "\n  ".join(f"{rec.items_.ids([i])[0]}: {labels[i]}" for i in found[:10])
    raise ValueError(f"--rate: {item!r} matches {len(found)} titles; use one of these ids:\n  {shown}")


def _read_pairs(path: Path) -> pd.DataFrame:
    pairs = load_ratings(path)
    return pairs[["user_id", "item_id"]]


def _write(df: pd.DataFrame, output: Path | None, fmt: str | None, labels: list[str] | None = None,
           label_name: str = "label") -> None:
    """Write to --output atomically, else to stdout: a table on a terminal, CSV in a pipe."""
    if fmt is not None and fmt not in FORMATS:
        fail(f"--format: expected one of {', '.join(FORMATS)}, found {fmt!r}", code=2)
    if output is None:
        fmt = fmt or ("table" if sys.stdout.isatty() else "csv")
        if fmt == "parquet":
            fail("--format parquet needs --output FILE", code=2)
        sys.stdout.write(_render(df, fmt, labels, label_name))
        return
    fmt = fmt or {".json": "json", ".parquet": "parquet", ".pq": "parquet", ".txt": "table"}.get(
        output.suffix.lower(), "csv")
    if fmt == "parquet":
        atomic_file(output, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_file(output, lambda tmp: Path(tmp).write_text(_render(df, fmt, labels, label_name)))


def _render(df: pd.DataFrame, fmt: str, labels: list[str] | None, label_name: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=1) + "\n"
    table = df.assign(**{label_name: labels}) if labels is not None else df
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 200):
        return table.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n"
