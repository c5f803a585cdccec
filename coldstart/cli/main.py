"""The `coldstart` commands: each reads its options, calls the Python API and writes what it returns.

Exit codes: 0 success, 1 bad input (data, model or config), 2 bad usage. Results go to stdout or --output
(render.py); progress, notes and the library's messages to stderr (progress.py). The shared options and their
parsers are in options.py; the steps several commands take (read the data, train, write a study's report, turn bad
input into an exit code) in steps.py; `fit --nproc` in relaunch.py. torch and pandas are imported inside the
commands: `--help` is instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import (ConfigFile, Device, Epochs, Format, InnerSteps, ItemCol, ItemsFile, Learner, LearnerOptions,
                      ModelDir, NewFraction, Objective, Output, Priors, Quiet, RatingCol, Ratings, Seed, Seeds, Teacher,
                      Threads, Threshold, TimeCol, UsageError, UserCol, UsersFile, build_config, int_list,
                      name_list, parse_item_split, study_seeds)
from .progress import FitProgress, note, show_messages
from .relaunch import leave_process_group, relaunch
from .render import INTERVIEW_SCORE, KNOWN, answered, check_output, info_lines, read_pairs, write, write_items
from .steps import fail, fit_notes, note_cap, read_data, recommend_streamed, reported, train, write_study

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # click's plain help: never cuts an option's name in a narrow terminal
                  help="Meta-learned recommendations for users with a handful of ratings.")


def main() -> None:
    """Console-script entry point."""
    app()


@app.command()
def fit(
    ratings: Ratings = None,
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")] = Path("model"),
    items: ItemsFile = None, users: UsersFile = None, objective: Objective = None, epochs: Epochs = None,
    inner_steps: InnerSteps = None,
    learner: Learner = None, learner_option: LearnerOptions = None, teacher: Teacher = None, priors: Priors = None,
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
        raise typer.Exit(relaunch(nproc))
    show_messages(quiet, threads or 1)
    from ..checkpoint import checkpoint_path
    from ..distributed import init_from_env
    from ..persist import check_target
    from ..recommender import ColdStartRecommender
    with reported():
        check_target(out)
        cfg = build_config(config, learner_option, objective=objective, epochs=epochs, inner_steps=inner_steps,
                           learner=learner, teacher=teacher, priors=priors, device=device, seed=seed)
        shard = init_from_env(cfg.device)
        quiet = quiet or (shard is not None and shard.rank > 0)  # one process speaks
        data = read_data(ratings, items, users, (user_col, item_col, rating_col, time_col), quiet, categorical=True)
        rec = ColdStartRecommender(cfg)
        diverged = train(rec, data, checkpoint_path(out), checkpoint_every, resume, quiet)
        note(quiet, f"saving {out}")
        rec.save(out, user_history=user_history)
        checkpoint_path(out).unlink(missing_ok=True)
    if shard is not None:
        leave_process_group(after=lambda: fit_notes(quiet, rec, out, diverged))
    fit_notes(quiet, rec, out, diverged)


@app.command()
def upgrade(model: ModelDir = Path("model")) -> None:
    """Re-save a model directory of an older format (4, 5 or 6) in the current one, with checksums."""
    from ..persist import upgrade_model
    with reported():
        upgrade_model(model)
    typer.echo(f"upgraded {model}", err=True)


@app.command()
def recommend(
    model: ModelDir = Path("model"),
    user: Annotated[Optional[list[str]], typer.Option("--user", metavar="ID", help="A known user (repeatable): "
                                                      "adapt on their logged ratings.")] = None,
    ratings: Annotated[Optional[Path], typer.Option("--ratings", help="Support ratings of one or many new users. "
                                                      "A .parquet or .csv file with --output .parquet or .csv is "
                                                      "streamed in chunks (each user's rows together): memory stays "
                                                      "flat however many users it holds.")
                       ] = None,
    rate: Annotated[Optional[list[str]], typer.Option("--rate", metavar="ITEM=RATING", help="ITEM=RATING for one "
                                                      "ad-hoc new user (repeatable); ITEM may be an id or a title.")
                    ] = None,
    unseen: Annotated[Optional[list[str]], typer.Option("--unseen", metavar="ITEM", help="With --rate: an ITEM the "
                                                        "ad-hoc user said they have not seen (repeatable; an "
                                                        "interview's answer).")] = None,
    users: Annotated[Optional[Path], typer.Option("--users", help="Features of the new users in --ratings.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Items per user (at most the catalogue's).")] = 10,
    exclude_seen: Annotated[bool, typer.Option("--exclude-seen/--include-seen",
                                               help="Leave out the items of the support set.")] = True,
    output: Output = None, fmt: Format = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Top-k items for known users, for a file of new users (one batched pass), or for one ad-hoc user."""
    show_messages(quiet, threads)
    from ..io import Columns, load_features, load_ratings
    from ..recommender import ColdStartRecommender
    from ..streaming import streamable
    with reported():
        if sum(x is not None and x != [] for x in (user, ratings, (rate or []) + (unseen or []))) != 1:
            raise UsageError("give exactly one of --user, --ratings or --rate (with --unseen)")
        check_output(output)
        rec = ColdStartRecommender.load(model)
        note_cap(quiet, "--k", k, len(rec.items_))
        feats = load_features(users, id_col=user_col, kind="user") if users else None
        if ratings is not None and output is not None and fmt is None and streamable(ratings) and streamable(output):
            cols = Columns(user_col, item_col, rating_col)
            return recommend_streamed(rec, ratings, output, k, exclude_seen, feats, cols, quiet)
        if user:
            recs = rec.recommend_known(user, k=k, exclude_seen=exclude_seen)
        else:
            support = (answered(rec, rate, unseen, for_adaptation=True) if rate or unseen else
                       load_ratings(ratings, user_col=user_col, item_col=item_col, rating_col=rating_col))
            recs = rec.recommend(support, k=k, exclude_seen=exclude_seen, users=feats)
        if recs.empty:
            raise ValueError("nothing to recommend: every item of the catalogue is excluded (--include-seen keeps "
                             "the support items)")
        write_items(rec, recs, output, fmt)


@app.command()
def predict(
    model: ModelDir = Path("model"),
    ratings: Annotated[Path, typer.Option("--ratings", help="Support ratings: each user is adapted on its rows.")
                       ] = ...,
    pairs: Annotated[Path, typer.Option("--pairs", help="user_id, item_id pairs to score.")] = ...,
    output: Output = None, fmt: Format = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Predictions for (user, item) pairs, each user adapted on its support ratings."""
    show_messages(quiet, threads)
    from ..io import load_ratings
    from ..recommender import ColdStartRecommender
    with reported():
        check_output(output)
        rec = ColdStartRecommender.load(model)
        write(rec.predict(load_ratings(ratings), read_pairs(pairs)), output, fmt)


@app.command()
def evaluate(
    ratings: Ratings = None, items: ItemsFile = None, users: UsersFile = None,
    shots: Annotated[str, typer.Option(help="Support sizes, comma-separated.")] = "1,3,5,10",
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Length of the ranked lists.")] = 10,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for report.csv/json/png, paired.csv and "
                                         "users.csv.gz (made if missing; default: ./evaluation in the working "
                                         "directory).")] = Path("evaluation"),
    new_fraction: NewFraction = 0.2, threshold: Threshold = 4.0,
    item_split: Annotated[Optional[str], typer.Option(help="COLUMN:CUTOFF, e.g. year:1997: MeLU's four scenarios, "
                                                      "items whose COLUMN >= CUTOFF being the new items.")] = None,
    objective: Objective = None, epochs: Epochs = None, priors: Priors = None, device: Device = None,
    seed: Seed = None, seeds: Seeds = None,
    learners: Annotated[Optional[str], typer.Option(help="Several learners, comma-separated (e.g. maml,reptile): "
                                                    "each is fitted and scored; the first is `coldstart` in the "
                                                    "paired table.")] = None,
    teachers: Annotated[Optional[str], typer.Option(help="Teachers, comma-separated, of auto, als, ease, none (e.g. "
                                                    "none,ease): coldstart is fitted with each; the first is "
                                                    "`coldstart`, the others `coldstart:teacher=NAME`.")] = None,
    ablations: Annotated[bool, typer.Option("--ablations", help="Also fit coldstart without time-aware episodes and "
                                            "without the priors (coldstart:no-time, coldstart:no-priors).")] = False,
    learner_option: LearnerOptions = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """The cold-start protocol: coldstart and the baselines on the same split, one report."""
    show_messages(quiet, threads or 1)
    from ..evaluation import Protocol, default_systems, run_seeds
    from ..learners import learner_class
    with reported():
        cfg = build_config(config, learner_option, objective=objective, epochs=epochs, priors=priors, device=device,
                           seed=seed)
        seed_list = study_seeds(seed, seeds, cfg)
        learner_list, teacher_list = name_list(learners, "--learners"), name_list(teachers, "--teachers")
        for name in learner_list or []:  # every name (and its --learner-option's) checked before any fit
            learner_class(name).options_of(cfg.replace(learner=name))
        for name in teacher_list or []:
            cfg.replace(teacher=name)
        cfg = cfg.replace(learner=(learner_list or [cfg.learner])[0], teacher=(teacher_list or [cfg.teacher])[0])
        protocol = Protocol(shots=int_list(shots, "--shots"), k=k, new_fraction=new_fraction,
                            threshold=threshold, seed=cfg.seed, item_split=parse_item_split(item_split))
        data = read_data(ratings, items, users, (user_col, item_col, rating_col, time_col), quiet, k=k)
        with FitProgress(quiet, per_epoch=False) as on_step:  # many fits: a line every 30 s, and one per system
            report = run_seeds(data, cfg, protocol, seed_list,
                               lambda c: default_systems(c, on_step, learners=learner_list, teachers=teacher_list,
                                                         ablations=ablations),
                               on_progress=lambda m: note(quiet, m))
        write_study(report, output, quiet)


@app.command("interview-study")
def interview_study(
    ratings: Ratings = None, items: ItemsFile = None, users: UsersFile = None,
    questions: Annotated[str, typer.Option(help="Numbers of questions, comma-separated: each new user is asked that "
                                           "many items by each strategy, then ranked.")] = "3,5,10",
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Length of the ranked lists.")] = 10,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for report.csv/json/png, paired.csv and "
                                         "users.csv.gz (made if missing; default: ./interview-study in the "
                                         "working directory).")] = Path("interview-study"),
    new_fraction: NewFraction = 0.2, threshold: Threshold = 4.0,
    objective: Objective = None, epochs: Epochs = None, learner: Learner = None,
    learner_option: LearnerOptions = None, teacher: Teacher = None, device: Device = None, seed: Seed = None,
    seeds: Seeds = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Simulated onboarding on the newest users: each is asked N items by coldstart's interview, the most popular,
    the most liked and random items, answers from their log, and is then ranked; one report per strategy."""
    show_messages(quiet, threads or 1)
    from ..evaluation import Protocol
    from ..evaluation import interview_study as study
    with reported():
        cfg = build_config(config, learner_option, objective=objective, epochs=epochs, learner=learner,
                           teacher=teacher, device=device, seed=seed)
        seed_list = study_seeds(seed, seeds, cfg)
        counts = int_list(questions, "--questions", low=1)
        protocol = Protocol(k=k, new_fraction=new_fraction, threshold=threshold, seed=cfg.seed)
        data = read_data(ratings, items, users, (user_col, item_col, rating_col, time_col), quiet, k=k)
        with FitProgress(quiet, per_epoch=False) as on_step:
            report = study(data, cfg, counts, protocol, seeds=seed_list, on_progress=lambda m: note(quiet, m),
                           on_step=on_step)
        write_study(report, output, quiet)


@app.command(help="The items to ask a brand-new user to rate next, given the answers so far (each answer changes "
                  f"the next questions). Columns: user_id, rank, item_id, {INTERVIEW_SCORE}")
def interview(
    model: ModelDir = Path("model"),
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Questions to ask.")] = 10,
    rate: Annotated[Optional[list[str]], typer.Option("--rate", metavar="ITEM=RATING", help="ITEM=RATING answered "
                                                      "so far (repeatable); ITEM may be an id or a title.")] = None,
    unseen: Annotated[Optional[list[str]], typer.Option("--unseen", metavar="ITEM", help="An ITEM asked and "
                                                        "answered \"not seen\" (repeatable): never asked again, and "
                                                        "itself a signal.")] = None,
    output: Output = None, fmt: Format = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    show_messages(quiet, threads)
    from ..interview import NEW_USER
    from ..recommender import ColdStartRecommender
    with reported():
        check_output(output)
        rec = ColdStartRecommender.load(model)
        note_cap(quiet, "--n", n, len(rec.items_))
        answers = answered(rec, rate, unseen) if rate or unseen else None
        questions = rec.interview(answers, n=n, user_ids=[NEW_USER])
        if questions.empty:
            raise ValueError("nothing left to ask: every item of the catalogue has been answered")
        write_items(rec, questions.rename(columns={"score": KNOWN}), output, fmt)


@app.command()
def serve(
    model: ModelDir = Path("model"),
    host: Annotated[str, typer.Option(help="Address to listen on; any but a loopback address needs --token.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes, each with the model in memory.")] = 1,
    token: Annotated[Optional[str], typer.Option(envvar="COLDSTART_TOKEN", help="Every request but GET /health and "
                                                 "the page must carry `Authorization: Bearer TOKEN`.")] = None,
    batching: Annotated[bool, typer.Option("--batching/--no-batching", help="Adapt concurrent /recommend requests "
                                           "in one batched pass (waits at most 5 ms for company).")] = True,
    max_body: Annotated[int, typer.Option(min=1, help="Largest request body in bytes (413 above).")] = 1 << 20,
    threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Serve a model over HTTP: the JSON API (/recommend, /recommend/batch, /interview, /items, /health, /reload;
    schema at /openapi.json) and the onboarding page at /. SIGHUP or POST /reload swaps in the model folder's new
    contents once they load and verify."""
    show_messages(quiet, threads)
    try:
        from ..serve import serve as serve_model
    except ImportError as exc:
        fail(f"coldstart serve needs the serve extra ({exc.name} is missing): pip install \"coldstart-rec[serve]\"")
    with reported():
        serve_model(model, host=host, port=port, workers=workers, token=token, batching=batching,
                    max_body=max_body, log_level="warning" if quiet else "info")


@app.command()
def info(model: ModelDir = Path("model")) -> None:
    """What a model directory holds: sizes, files and their checksums, config, training summary."""
    from ..persist import read_metadata
    with reported():
        typer.echo("\n".join(info_lines(model, read_metadata(model))))


@app.command()
def tune(
    ratings: Ratings = None,
    trials: Annotated[int, typer.Option(min=0, help="Trials to add to the study (0: rewrite the files only).")] = 20,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of the study (study.sqlite3: the same "
                                         "command again adds trials to it), best.toml, trials.csv, trials.png "
                                         "(default: ./tune in the working directory).")] = Path("tune"),
    items: ItemsFile = None, users: UsersFile = None,
    shots: Annotated[str, typer.Option(help="Support sizes scored, comma-separated.")] = "1,3,5,10",
    seeds_per_trial: Annotated[int, typer.Option(min=1, help="Fits per trial (seeds S, S+1, ...), averaged.")] = 2,
    new_fraction: Annotated[float, typer.Option(help="Share of users (the newest) held out as new users: the "
                                                "evaluation's (never read), then the validation users.")] = 0.2,
    fix: Annotated[Optional[str], typer.Option(help="Searched names kept at the config's values, comma-separated "
                                               "(e.g. embedding_dim,hidden).")] = None,
    objective: Objective = None, learner: Learner = None, learner_option: LearnerOptions = None,
    epochs: Annotated[Optional[int], typer.Option(help="Fix the epochs (else searched: 10 to 40).")] = None,
    device: Device = None, seed: Seed = None, config: ConfigFile = None,
    user_col: UserCol = "user_id", item_col: ItemCol = "item_id", rating_col: RatingCol = "rating",
    time_col: TimeCol = "timestamp", threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Bayesian optimisation (TPE) of the learner's hyperparameters on validation users carved from the training
    users; writes best.toml (for `fit --config`), trials.csv and trials.png."""
    show_messages(quiet, threads or 1)
    from .. import tuning
    try:
        tuning.require_optuna()
    except ImportError as exc:
        fail(str(exc))
    with reported():
        cfg = build_config(config, learner_option, objective=objective, learner=learner, epochs=epochs,
                           device=device, seed=seed)
        fixed = list(dict.fromkeys((name_list(fix, "--fix") or []) + (["epochs"] if epochs is not None else [])))
        shot_list = int_list(shots, "--shots", low=1)
        data = read_data(ratings, items, users, (user_col, item_col, rating_col, time_col), quiet)
        note(quiet, f"tuning {cfg.learner} on {data.name}: {trials} trials of {seeds_per_trial} fits into "
                    f"{output / 'study.sqlite3'}")
        result = tuning.tune(data, cfg, trials, output, shots=shot_list, seeds_per_trial=seeds_per_trial,
                             new_fraction=new_fraction, fixed=fixed, on_trial=lambda line: note(quiet, line))
    if not result.trials.empty:
        typer.echo(result.trials.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if result.best_trial is not None:
        note(quiet, f"best: trial {result.best_trial}, validation nDCG@10 {result.best_value:.4f}; "
                    f"`coldstart fit --config {output / 'best.toml'}` trains it")
    note(quiet, "wrote " + ", ".join(str(f) for f in result.files))
