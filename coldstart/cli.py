"""The `coldstart` command: a thin Typer layer over the Python API. Only this module prints.

Exit codes: 0 success, 1 bad input (data, model or config), 2 bad usage.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:  # the heavy modules (torch, pandas) are imported inside the commands: `--help` is instant
    import pandas as pd

    from .config import Config
    from .recommender import ColdStartRecommender
    from .train import StepReport

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Meta-learned recommendations for users with a handful of ratings.")
PROGRESS_EVERY_S = 30.0  # without a terminal: a progress line per epoch, and at least this often within one
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


class UsageError(ValueError):
    """An option's value has the wrong form (exit code 2, as for typer's own usage errors)."""


def bad_input() -> tuple[type[BaseException], ...]:
    """What a command turns into a one-line error (UsageError is a ValueError): bad input exits 1, bad usage 2
    (see `handled`)."""
    from .errors import NotFittedError
    return (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, NotFittedError)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handled(exc: BaseException) -> None:
    """Report a caught bad-input exception and exit: 2 for usage errors, 1 for the rest."""
    fail(_message(exc), code=2 if isinstance(exc, UsageError) else 1)


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
    teacher: Annotated[Optional[str], typer.Option(help="auto (the default: ease where it applies, up to 10,000 "
                                                   "items), ease, als or none: a warm model fitted on the training "
                                                   "log guides meta-training (config teacher_*); used only by fit.")
                       ] = None,
    device: Device = None, seed: Seed = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp",
    user_history: Annotated[bool, typer.Option("--user-history/--no-user-history", help="Keep the training users' "
                                               "rating histories in the model (needed by `recommend --user`).")
                            ] = True,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Write a checkpoint beside --out every N epochs "
                                                  "(OUT.checkpoint.safetensors; removed once the model is saved).")
                                ] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint beside --out, if there is "
                                         "one (same data and settings); the result equals an uninterrupted fit.")
                      ] = False,
    nproc: Annotated[int, typer.Option(min=1, help="Training processes (torch.distributed; gloo on CPU, NCCL on "
                                       "GPU): each adapts a share of every meta-batch. Same as `torchrun "
                                       "--nproc_per_node=N -m coldstart fit ...`.")] = 1,
    threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Meta-train a model on RATINGS and write it to --out."""
    if nproc > 1:
        raise typer.Exit(_relaunch(nproc))
    setup(quiet, threads or 1)
    from .checkpoint import checkpoint_path
    from .distributed import init_from_env, is_main_process
    from .formats import load_dataset
    from .persist import check_target
    from .recommender import ColdStartRecommender
    from .errors import TrainingDiverged

    ckpt = checkpoint_path(out)
    try:
        check_target(out)
        cfg = _config(config, objective=objective, epochs=epochs, inner_steps=inner_steps, learner=learner,
                      validation_fraction=validation_fraction, device=device, seed=seed, teacher=teacher)
        shard = init_from_env(cfg.device)
        quiet = quiet or (shard is not None and shard.rank > 0)  # one process speaks
        dataset = load_dataset(ratings or _bundled(), items=items, users=users, user_col=user_col,
                               item_col=item_col, rating_col=rating_col, time_col=time_col,
                               categorical=True)  # ids as pandas categories: no Python string per row
        _note(quiet, f"fitting on {dataset.name}: {len(dataset.ratings):,} ratings, "
                     f"{dataset.ratings['user_id'].nunique():,} users, {dataset.ratings['item_id'].nunique():,} items")
        if ckpt.exists() and not resume:
            _note(quiet, f"note: {ckpt} (an earlier, unfinished fit) will be overwritten; --resume continues it")
        rec, diverged = ColdStartRecommender(cfg), None
        with _progress(quiet) as on_step:
            try:
                rec.fit(dataset, on_step=on_step, checkpoint=ckpt, checkpoint_every=checkpoint_every, resume=resume)
            except TrainingDiverged as exc:
                diverged = exc
        if not is_main_process():
            _leave_process_group()
        rec.save(out, user_history=user_history)
        ckpt.unlink(missing_ok=True)
    except bad_input() as exc:
        handled(exc)
    if shard is not None:
        _leave_process_group(after=lambda: _fit_notes(quiet, rec, out, diverged))
    _fit_notes(quiet, rec, out, diverged)


def _fit_notes(quiet: bool, rec: ColdStartRecommender, out: Path, diverged: Exception | None) -> None:
    if diverged is not None:
        fail(f"{diverged}; saved that model to {out}")
    s = rec.summary_
    _note(quiet, f"saved {out}: {s['tasks']:,} tasks in {s['seconds']:.1f}s ({s['tasks_per_s']:,.0f} tasks/s) "
                 f"on {s['device']}; final query loss {s['epoch_query_loss'][-1]:.4f}")
    if s.get("best_epoch") is not None:
        kept = s["valid_query_loss"][s["best_epoch"]]
        _note(quiet, f"kept epoch {s['best_epoch']} of {s['epochs']}: held-out query loss {kept:.4f} "
                     f"({s['valid_users']:,} held-out users)")


@app.command()
def upgrade(model: ModelDir = Path("model")) -> None:
    """Re-save a model directory of an older format (4) in the current one, with checksums."""
    from .persist import upgrade_model
    try:
        upgrade_model(model)
    except bad_input() as exc:
        handled(exc)
    typer.echo(f"upgraded {model}", err=True)


@app.command()
def recommend(
    model: ModelDir = Path("model"),
    user: Annotated[Optional[list[str]], typer.Option("--user", help="A known user (repeatable): adapt on their "
                                                      "logged ratings.")] = None,
    ratings: Annotated[Optional[Path], typer.Option("--ratings", help="Support ratings of one or many new users. "
                                                      "A .parquet or .csv file with --output .parquet or .csv is "
                                                      "streamed in chunks (each user's rows together): memory stays "
                                                      "flat however many users it holds.")
                       ] = None,
    rate: Annotated[Optional[list[str]], typer.Option("--rate", help="ITEM=RATING for one ad-hoc new user "
                                                      "(repeatable); ITEM may be an exact title.")] = None,
    unseen: Annotated[Optional[list[str]], typer.Option("--unseen", help="With --rate: an ITEM the ad-hoc user said "
                                                        "they have not seen (repeatable; an interview's answer).")
                      ] = None,
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
    if sum(x is not None and x != [] for x in (user, ratings, (rate or []) + (unseen or []))) != 1:
        fail("give exactly one of --user, --ratings or --rate (with --unseen)", code=2)
    _check_output(output)
    from .data import Columns, load_features, load_ratings
    from .recommender import ColdStartRecommender
    from .streaming import stream_recommend, streamable
    try:
        rec = ColdStartRecommender.load(model)
        if ratings is not None and output is not None and fmt is None and streamable(ratings) and streamable(output):
            feats = load_features(users, id_col=user_col, kind="user") if users else None
            with _chunk_progress(quiet, ratings) as on_chunk:
                done = stream_recommend(rec, ratings, output, k=k, exclude_seen=exclude_seen, users=feats,
                                        cols=Columns(user_col, item_col, rating_col), on_chunk=on_chunk)
            _note(quiet, f"wrote {output}: {done.users:,} users in {done.seconds:.1f}s "
                         f"({done.users_per_s:,.0f} users/s)")
            return
        if user:
            recs = rec.recommend_known(user, k=k, exclude_seen=exclude_seen)
        else:
            support = (_answered(rec, rate, unseen, for_adaptation=True) if rate or unseen else
                       load_ratings(ratings, user_col=user_col, item_col=item_col, rating_col=rating_col))
            feats = load_features(users, id_col=user_col, kind="user") if users else None
            recs = rec.recommend(support, k=k, exclude_seen=exclude_seen, users=feats)
        if recs.empty:
            raise ValueError("nothing to recommend: every item of the catalogue is excluded (--include-seen keeps "
                             "the support items)")
        labels = rec.item_label(recs["item_id"].tolist())
        _write(recs, output, fmt, labels=labels, label_name=rec.item_encoder_.label or "label")
    except bad_input() as exc:
        handled(exc)


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
    _check_output(output)
    from .data import load_ratings
    from .recommender import ColdStartRecommender
    try:
        rec = ColdStartRecommender.load(model)
        preds = rec.predict(load_ratings(ratings), _read_pairs(pairs))
        _write(preds, output, fmt)
    except bad_input() as exc:
        handled(exc)


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
    teachers: Annotated[Optional[str], typer.Option(help="Teachers, comma-separated, of auto, als, ease, none (e.g. "
                                                    "none,ease): coldstart is fitted with each; the first is "
                                                    "`coldstart`, the others `coldstart:teacher=NAME`.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Several seeds, comma-separated: the whole protocol runs once "
                                                 "per seed and the table shows mean ± sd.")] = None,
    interview: Annotated[Optional[str], typer.Option(help="Numbers of questions, comma-separated (e.g. 3,5,10): "
                                                     "simulate onboarding instead: each new user is asked that "
                                                     "many items by coldstart's interview, the most popular, the "
                                                     "most liked and random items, then ranked.")] = None,
    config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """The cold-start protocol: coldstart and the baselines on the same split, one report (or, with --interview,
    the onboarding interview's strategies)."""
    setup(quiet, threads or 1)
    from .evaluation import Protocol, default_systems, format_table, run_seeds, write_report
    from .formats import load_dataset
    try:
        if seeds is not None and seed is not None:
            raise UsageError("--seed and --seeds: give one of them")
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
        teacher_list = _name_list(teachers, "--teachers") if teachers else None
        for name in teacher_list or []:  # every name checked before any fit ("none": Config's no teacher)
            cfg.replace(teacher=name)
        if teacher_list:  # the report's config is that of `coldstart`, the first teacher's
            cfg = cfg.replace(teacher=teacher_list[0])
        if interview is not None:
            from .evaluation import interview_study
            with _progress(quiet, per_epoch=False) as on_step:
                report = interview_study(dataset, cfg, _int_list(interview, "--interview", low=1), protocol,
                                         seeds=seed_list, on_progress=lambda m: _note(quiet, m), on_step=on_step)
            files = write_report(report, output)
            typer.echo(format_table(report))
            _note(quiet, "wrote " + ", ".join(str(f) for f in files))
            return
        with _progress(quiet, per_epoch=False) as on_step:  # many fits: a line every 30 s, and one per system
            report = run_seeds(dataset, cfg, protocol, seed_list,
                               lambda c: default_systems(c, on_step, learners=learner_list, teachers=teacher_list),
                               on_progress=lambda m: _note(quiet, m))
        files = write_report(report, output)
    except bad_input() as exc:
        handled(exc)
    typer.echo(format_table(report))
    _note(quiet, "wrote " + ", ".join(str(f) for f in files))


@app.command()
def interview(
    model: ModelDir = Path("model"),
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Questions to ask.")] = 10,
    rate: Annotated[Optional[list[str]], typer.Option("--rate", help="ITEM=RATING answered so far (repeatable); "
                                                      "ITEM may be an exact title.")] = None,
    unseen: Annotated[Optional[list[str]], typer.Option("--unseen", help="An ITEM asked and answered \"not seen\" "
                                                        "(repeatable): never asked again, and itself a signal.")
                      ] = None,
    output: Output = None, fmt: Format = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """The items to ask a brand-new user to rate next, given the answers so far (each answer changes the next
    questions)."""
    setup(quiet, threads)
    _check_output(output)
    from .interview import NEW_USER
    from .recommender import ColdStartRecommender
    try:
        rec = ColdStartRecommender.load(model)
        answers = _answered(rec, rate, unseen) if rate or unseen else None
        questions = rec.interview(answers, n=n, user_ids=[NEW_USER])
        if questions.empty:
            raise ValueError("nothing left to ask: every item of the catalogue has been answered")
        _write(questions, output, fmt, labels=rec.item_label(questions["item_id"].tolist()),
               label_name=rec.item_encoder_.label or "label")
    except bad_input() as exc:
        handled(exc)


@app.command()
def info(model: ModelDir = Path("model")) -> None:
    """What a model directory holds: sizes, files and their checksums, config, training summary."""
    from .config import Config
    from .persist import read_metadata
    try:
        meta = read_metadata(model)
    except bad_input() as exc:
        handled(exc)
    enc = [f"{f['name']} ({f['kind']})" for f in meta["item_encoder"]["fields"]]
    uenc = [f"{f['name']} ({f['kind']})" for f in meta["user_encoder"]["fields"]]
    lines = [f"model            {model}", f"format version   {meta['format_version']} "
             f"(coldstart {meta['coldstart_version']})", f"items            {len(meta['items']):,}",
             f"users            {meta['training'].get('n_users', 0):,} in training, histories "
             f"{'kept' if 'user_history' in meta['files'] else 'left out (--no-user-history)'}",
             *(f"file             {f['name']} ({f['bytes']:,} bytes, sha256 {f['sha256']})"
               for f in meta["files"].values()),
             f"item features    {', '.join(enc) or '-'}",
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


@app.command()
def tune(
    ratings: Annotated[Optional[Path], typer.Argument(help="Ratings file or known dataset folder; default: the "
                                                      "bundled MovieLens latest-small.")] = None,
    trials: Annotated[int, typer.Option(min=0, help="Trials to add to the study (0: rewrite the files only).")] = 20,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of the study (study.sqlite3: the same "
                                         "command again adds trials to it), best.toml, trials.csv, trials.png.")
                      ] = Path("tune"),
    items: ItemsFile = None, users: UsersFile = None,
    shots: Annotated[str, typer.Option(help="Support sizes scored, comma-separated.")] = "1,3,5,10",
    seeds_per_trial: Annotated[int, typer.Option(min=1, help="Fits per trial (seeds S, S+1, ...), averaged.")] = 2,
    new_fraction: Annotated[float, typer.Option(help="Share of users (the newest) held out as new users: the "
                                                "evaluation's (never read), then the validation users.")] = 0.2,
    fix: Annotated[Optional[str], typer.Option(help="Searched names kept at the config's values, comma-separated "
                                               "(e.g. embedding_dim,hidden).")] = None,
    objective: Objective = None, learner: Learner = None,
    epochs: Annotated[Optional[int], typer.Option(help="Fix the epochs (else searched: 10 to 40).")] = None,
    device: Device = None, seed: Seed = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Bayesian optimisation (TPE) of the learner's hyperparameters on validation users carved from the training
    users; writes best.toml (for `fit --config`), trials.csv and trials.png."""
    setup(quiet, threads or 1)
    from . import tuning
    from .formats import load_dataset
    try:
        tuning.require_optuna()
    except ImportError as exc:
        fail(str(exc))
    try:
        cfg = _config(config, objective=objective, learner=learner, epochs=epochs, device=device, seed=seed)
        fixed = list(dict.fromkeys((_name_list(fix, "--fix") if fix else []) + (["epochs"] if epochs is not None else [])))
        shot_list = _int_list(shots, "--shots", low=1)
        dataset = load_dataset(ratings or _bundled(), items=items, users=users, user_col=user_col,
                               item_col=item_col, rating_col=rating_col, time_col=time_col)
        _note(quiet, f"tuning {cfg.learner} on {dataset.name}: {trials} trials of {seeds_per_trial} fits into "
                     f"{output / 'study.sqlite3'}")
        result = tuning.tune(dataset, cfg, trials, output, shots=shot_list, seeds_per_trial=seeds_per_trial,
                             new_fraction=new_fraction, fixed=fixed, on_trial=lambda line: _note(quiet, line))
    except bad_input() as exc:
        handled(exc)
    if not result.trials.empty:
        typer.echo(result.trials.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if result.best_trial is not None:
        _note(quiet, f"best: trial {result.best_trial}, validation nDCG@10 {result.best_value:.4f}; "
                     f"`coldstart fit --config {output / 'best.toml'}` trains it")
    _note(quiet, "wrote " + ", ".join(str(f) for f in result.files))


# --- helpers -------------------------------------------------------------------------------------------------
def _relaunch(nproc: int) -> int:
    """Run this same `coldstart fit` command (without --nproc) in `nproc` processes under torchrun; its exit code."""
    import subprocess
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg == "--nproc" or arg.startswith("--nproc="):
            skip = arg == "--nproc"
            continue
        args.append(arg)
    return subprocess.call([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc_per_node={nproc}", "-m", "coldstart", *args])


def _leave_process_group(after=None) -> None:
    """Leave the training process group and end this process at once: torchrun workers sometimes abort in
    interpreter teardown under load (../shared/ENGINES.md); `after` runs first (rank 0's messages)."""
    import os

    import torch.distributed as dist
    code = 0
    try:
        if after is not None:
            after()
    except typer.Exit as exc:
        code = exc.exit_code
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _config(path: Path | None, **flags) -> Config:
    """The config file's values (or the defaults), overridden by the command-line flags that were given."""
    from .config import Config
    cfg = Config.from_toml(path) if path else Config()
    return cfg.replace(**{k: v for k, v in flags.items() if v is not None})


def _int_list(text: str, option: str, low: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option}: expected comma-separated integers such as 1,3,5,10, found {text!r}") from None
    if low is not None and min(values) < low:
        raise UsageError(f"{option}: expected integers >= {low}, found {text!r}")
    if len(set(values)) < len(values):
        raise UsageError(f"{option}: expected distinct values, found {text!r}")
    return values


def _name_list(text: str, option: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names or len(set(names)) < len(names):
        raise UsageError(f"{option}: expected distinct comma-separated names such as maml,reptile, found {text!r}")
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
        raise UsageError(f"--item-split: expected COLUMN:CUTOFF such as year:1997, found {text!r}")
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
    """Progress of meta-training on stderr: a rich bar on a terminal; without one (batch jobs, `nohup`, `> log`)
    a plain line after every epoch (`per_epoch`) and at least every PROGRESS_EVERY_S seconds; nothing with --quiet."""

    def __init__(self, quiet: bool, per_epoch: bool = True):
        self.quiet, self.tty, self.per_epoch = quiet, sys.stderr.isatty(), per_epoch
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return None
        self.task, self.last = None, time.monotonic()
        if not self.tty:
            return self.line
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} tasks/s"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        return self.update

    def update(self, r: StepReport) -> None:
        if self.task is None or (r.epoch == 0 and r.step == 0):  # a new fit starts a new bar
            self.task = self.bar.add_task("fit", total=r.steps_per_epoch * r.epochs, epoch="", loss=0.0, rate=0.0)
        self.bar.update(self.task, advance=1, epoch=f"{r.epoch + 1}/{r.epochs}", loss=r.loss, rate=r.tasks_per_s)

    def line(self, r: StepReport) -> None:
        now, end = time.monotonic(), r.step + 1 == r.steps_per_epoch
        if (end and self.per_epoch) or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            where = "done" if end else f"step {r.step + 1:,}/{r.steps_per_epoch:,}"
            typer.echo(f"epoch {r.epoch + 1}/{r.epochs} {where}: loss {r.loss:.4f}, {r.tasks_per_s:,.0f} tasks/s",
                       err=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _check_output(output: Path | None) -> None:
    """Refuse an --output that cannot be written, before any work (exit 1)."""
    if output is None:
        return
    if output.is_dir():
        fail(f"--output {output}: is a folder; expected a file name")
    if not output.parent.is_dir():
        fail(f"--output {output}: the folder {output.parent} does not exist")


class _chunk_progress:
    """Progress of a streamed recommend on stderr: a rich bar over the support rows on a terminal (its total from
    the Parquet footer), else a plain line at most every PROGRESS_EVERY_S seconds; nothing with --quiet."""

    def __init__(self, quiet: bool, source: Path):
        self.quiet, self.source, self.bar, self.last = quiet, source, None, float("-inf")

    def __enter__(self):
        if self.quiet or not sys.stderr.isatty():
            return self.line
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("scoring"), BarColumn(), TextColumn("{task.completed:,} of {task.total:,} rows"
                            "  {task.fields[users]:,} users  {task.fields[rate]:,.0f} users/s"),
                            TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.start()
        self.task = self.bar.add_task("score", total=_rows_in(self.source), users=0, rate=0.0)
        return self.update

    def update(self, p) -> None:
        self.bar.update(self.task, completed=p.rows, users=p.users, rate=p.users_per_s)

    def line(self, p) -> None:
        if not self.quiet and p.seconds - self.last >= PROGRESS_EVERY_S:
            self.last = p.seconds
            typer.echo(f"scored {p.users:,} users ({p.rows:,} support rows) in {p.seconds:.0f}s, "
                       f"{p.users_per_s:,.0f} users/s", err=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rows_in(source: Path) -> int | None:
    """The number of rows of a Parquet file (from its footer); None for other files."""
    if source.suffix.lower() not in (".parquet", ".pq"):
        return None
    import pyarrow.parquet as pq
    return pq.ParquetFile(source).metadata.num_rows


def _parse_rates(rec: ColdStartRecommender, rates: list[str]) -> pd.DataFrame:
    """`ITEM=RATING` pairs of one ad-hoc user; ITEM is an id, or an exact / unambiguous title."""
    import math

    import numpy as np
    import pandas as pd

    from .data import SCALE_TOLERANCE, out_of_scale
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
        rows.append({"user_id": "new-user", "item_id": _resolve_item(rec, item.strip()), "rating": rating})
    return pd.DataFrame(rows)


def _answered(rec: ColdStartRecommender, rate: list[str] | None, unseen: list[str] | None,
              for_adaptation: bool = False) -> pd.DataFrame:
    """One ad-hoc user's answers: `--rate ITEM=RATING` rows and `--unseen ITEM` rows (rating NaN); with
    `for_adaptation`, as the support that adaptation sees (interview.answers_support: "not seen" as a dislike)."""
    import pandas as pd

    from .interview import NEW_USER, answers_support
    skipped = pd.DataFrame({"user_id": NEW_USER, "item_id": [_resolve_item(rec, i.strip(), "--unseen")
                                                             for i in unseen or []], "rating": float("nan")})
    rated = _parse_rates(rec, rate) if rate else None
    answers = pd.concat([f for f in (rated, skipped) if f is not None and len(f)])
    if not for_adaptation:
        return answers
    support = answers_support(answers, rec.config.objective, rec.rating_stats_["min"])
    if support.empty:
        raise UsageError("--unseen alone: a model of ratings learns nothing from \"not seen\"; give --rate too")
    return support


def _resolve_item(rec: ColdStartRecommender, item: str, option: str = "--rate") -> str:
    import pandas as pd
    if item in rec.items_:
        return item
    if rec.item_labels_ is None:
        raise ValueError(f"{option}: the model knows no item {item!r} (it has ids only, no titles)")
    labels = pd.Series(rec.item_labels_)
    exact = labels.index[labels == item]
    found = exact if len(exact) else labels.index[labels.str.contains(item, case=False, regex=False)]
    if len(found) == 1:
        return rec.items_.ids([found[0]])[0]
    if len(found) == 0:
        raise ValueError(f"{option}: no item has the id or title {item!r}")
    shown = "\n  ".join(f"{rec.items_.ids([i])[0]}: {labels[i]}" for i in found[:10])
    raise ValueError(f"{option}: {item!r} matches {len(found)} titles; use one of these ids:\n  {shown}")


def _read_pairs(path: Path) -> pd.DataFrame:
    from .data import load_ratings
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
    from .files import atomic_file
    if fmt == "parquet":
        atomic_file(output, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_file(output, lambda tmp: Path(tmp).write_text(_render(df, fmt, labels, label_name)))


def _render(df: pd.DataFrame, fmt: str, labels: list[str] | None, label_name: str) -> str:
    import pandas as pd
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=1) + "\n"
    table = df.assign(**{label_name: labels}) if labels is not None else df
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 200):
        return table.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n"
