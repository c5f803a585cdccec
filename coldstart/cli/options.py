"""The options several commands share, each defined once as an `Annotated` alias, and the parsers of their values.

A command lists the aliases it takes (`epochs: Epochs = None`); the aliases of config fields default to None, meaning
"the --config file's value, else Config's default", and their help shows that default (read from Config's fields:
importing config.py imports no torch). Nothing here imports torch or pandas at module level: `--help` is instant.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..config import Config
from ..learners import learner_names

if TYPE_CHECKING:
    from ..io import Dataset

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"  # in a checkout; see bundled()


class UsageError(ValueError):
    """An option's value has the wrong form (exit code 2, as for typer's own usage errors)."""


def _default(field: str) -> str:
    """Config's default of `field`, as the help shows it."""
    value = next(f.default for f in dataclasses.fields(Config) if f.name == field)
    return f"  [default: {value}, or the --config file's]"


# --- data ----------------------------------------------------------------------------------------------------
Ratings = Annotated[Optional[Path], typer.Argument(
    help="Ratings file or a known dataset folder (MovieLens, RecBole); default: the bundled MovieLens latest-small.",
    show_default=False, metavar="RATINGS")]
ItemsFile = Annotated[Optional[Path], typer.Option("--items", help="Item features file.")]
UsersFile = Annotated[Optional[Path], typer.Option("--users", help="User features file.")]
UserCol = Annotated[str, typer.Option("--user-col", help="Name of the user id column in RATINGS.")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Name of the item id column in RATINGS.")]
RatingCol = Annotated[str, typer.Option("--rating-col", help="Name of the rating column (absent: implicit).")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Name of the timestamp column.")]

# --- the config: flags override the --config file, which overrides Config's defaults ---------------------------
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="TOML file of config keys.")]
Objective = Annotated[Optional[str], typer.Option(help="implicit (rank the catalogue) or rating."
                                                  + _default("objective"))]
InnerSteps = Annotated[Optional[int], typer.Option(help="SGD steps of adaptation per user." + _default("inner_steps"))]
Epochs = Annotated[Optional[int], typer.Option(help="Passes over the training users." + _default("epochs"))]
Learner = Annotated[Optional[str], typer.Option(help="How users are adapted and the initialisation learns: one of "
                                                f"{', '.join(learner_names())} (coldstart/learners/NAME.py)."
                                                + _default("learner"))]
LearnerOptions = Annotated[Optional[list[str]], typer.Option(
    "--learner-option", metavar="KEY=VALUE",
    help="An option of the learner (repeatable), e.g. --learner proximal --learner-option l2=0.5; VALUE is read as "
         "TOML (0.5, true, [1, 2], \"text\"), else as text. Each learner's options are in "
         f"coldstart/learners/NAME.py, NAME one of {', '.join(learner_names())}.")]
Teacher = Annotated[Optional[str], typer.Option(help="auto (ease where it applies, up to 10,000 items), ease, als "
                                                "or none: a warm model fitted on the training log guides "
                                                "meta-training (config teacher_*)." + _default("teacher"))]
Priors = Annotated[Optional[str], typer.Option(help="What a new user would get anyway, weighed per user by a learned "
                                               "gate: some of recent, alltime, peers, ease (comma-separated), or "
                                               "none." + _default("priors"))]
Device = Annotated[Optional[str], typer.Option(help="auto, cpu or cuda." + _default("device"))]
Seed = Annotated[Optional[int], typer.Option(help="Seed of every random draw (and of the split)." + _default("seed"))]
Seeds = Annotated[Optional[str], typer.Option(help="Several seeds, comma-separated (instead of --seed): the whole "
                                              "protocol runs once per seed and the table shows mean ± sd.")]

# --- the run -------------------------------------------------------------------------------------------------
Threads = Annotated[Optional[int], typer.Option(min=1, help="torch CPU threads (default: 1 for fit, evaluate, "
                                                "interview-study and tune, whose small tensors run fastest on "
                                                "one; torch's own choice for recommend and predict, which score "
                                                "whole catalogues).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress, messages or notes on stderr (errors "
                                     "only).")]
ModelDir = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `coldstart fit`.")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here (format from --format or the "
                                                "extension) instead of stdout.")]
Format = Annotated[Optional[str], typer.Option("--format", "-f", help="table, csv, json or parquet.")]
NewFraction = Annotated[float, typer.Option(help="Share of users (the newest) held out as new users.")]
Threshold = Annotated[float, typer.Option(help="Query ratings >= this are relevant (implicit data: all).")]


# --- parsers -------------------------------------------------------------------------------------------------
def build_config(path: Path | None, learner_options: list[str] | None = None, **flags) -> Config:
    """The config file's values (or the defaults), overridden by the flags that were given; `--learner-option`s
    are added to the file's learner_options."""
    cfg = Config.from_toml(path) if path else Config()
    changes = {k: v for k, v in flags.items() if v is not None}
    if learner_options:
        changes["learner_options"] = {**cfg.learner_options, **parse_learner_options(learner_options)}
    return cfg.replace(**changes)


def parse_learner_options(texts: list[str]) -> dict[str, object]:
    """`KEY=VALUE` texts as a dict; VALUE as TOML reads it (`0.5` a float, `true` a bool), else the text itself."""
    options: dict[str, object] = {}
    for text in texts:
        key, sep, value = (part.strip() for part in text.partition("="))
        if not sep or not key.isidentifier() or not value:
            raise UsageError(f"--learner-option {text!r}: expected KEY=VALUE such as l2=0.5")
        if key in options:
            raise UsageError(f"--learner-option {text!r}: {key} is given twice")
        try:
            parsed = tomllib.loads(f"v = {value}")
        except tomllib.TOMLDecodeError:
            parsed = {}
        options[key] = parsed["v"] if list(parsed) == ["v"] else value
    return options


def int_list(text: str, option: str, low: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated integers such as 1,3,5,10, found {text!r}") from None
    if low is not None and min(values) < low:
        raise UsageError(f"{option}: expected integers >= {low}, found {text!r}")
    if len(set(values)) < len(values):
        raise UsageError(f"{option}: expected distinct values, found {text!r}")
    return values


def name_list(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names or len(set(names)) < len(names):
        raise UsageError(f"{option}: expected distinct comma-separated names such as maml,reptile, found {text!r}")
    return names


def study_seeds(seed: int | None, seeds: str | None, config: Config) -> list[int]:
    """The seeds of a study: --seeds, else the config's one seed (which --seed sets)."""
    if seeds is not None and seed is not None:
        raise UsageError("--seed and --seeds: give one of them")
    return list(int_list(seeds, "--seeds", low=0)) if seeds is not None else [config.seed]


def parse_item_split(text: str | None) -> tuple[str, float] | None:
    if text is None:
        return None
    column, _, cutoff = text.rpartition(":")
    try:
        value = float(cutoff)
    except ValueError:
        value = None
    if not column or value is None:
        raise UsageError(f"--item-split: expected COLUMN:CUTOFF such as year:1997, found {text!r}")
    return column, value


# --- data ----------------------------------------------------------------------------------------------------
def load_data(ratings: Path | None, items: Path | None, users: Path | None, columns: tuple[str, str, str, str],
              categorical: bool = False) -> Dataset:
    """The dataset the data options name (RATINGS absent: the bundled one); `columns` = user, item, rating, time."""
    from ..io import load_dataset
    user_col, item_col, rating_col, time_col = columns
    return load_dataset(ratings or bundled(), items=items, users=users, user_col=user_col, item_col=item_col,
                        rating_col=rating_col, time_col=time_col, categorical=categorical)


def item_counts(data: Dataset) -> tuple[int, int]:
    """(items in the catalogue, rated items): the catalogue is the rated items and those with features only, as
    a fitted model's (fitted.py)."""
    rated = data.ratings["item_id"].unique()
    if data.items is None:
        return len(rated), len(rated)
    return len(set(map(str, rated)) | set(data.items["item_id"].astype(str))), len(rated)


def bundled() -> Path:
    """MovieLens latest-small: the wheel ships it as coldstart/_data (pyproject.toml maps the repo's data/
    there); an editable install or a bare checkout has no coldstart/_data and reads data/ itself (BUNDLED)."""
    from importlib.resources import files

    candidates = (Path(str(files("coldstart") / "_data" / "ml-latest-small")), BUNDLED)
    for folder in candidates:
        if (folder / "ratings.csv").is_file():
            return folder
    raise FileNotFoundError(f"the bundled data is in neither {candidates[0]} nor {candidates[1]}: reinstall "
                            "coldstart-rec, or give a RATINGS file")
