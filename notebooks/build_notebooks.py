"""Writes quickstart.ipynb and cold_start_study.ipynb from the cell sources below, without outputs.

The notebooks are generated so that git holds clean notebooks (no outputs, no execution counts, stable cell
ids) and a change to one is a readable diff of this file. Edit the cells here, then run

    python notebooks/build_notebooks.py

`tests/test_notebooks.py` checks that the stored notebooks are exactly what this script writes, and executes
them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SMALL_ENV = "COLDSTART_NOTEBOOK_SMALL"  # "1": the notebooks shrink data, epochs and seeds (CI)


def md(text: str, tag: str | None = None) -> nbformat.NotebookNode:
    return _tagged(new_markdown_cell(text.strip("\n")), tag)


def code(text: str, tag: str | None = None) -> nbformat.NotebookNode:
    return _tagged(new_code_cell(text.strip("\n")), tag)


def _tagged(cell: nbformat.NotebookNode, tag: str | None) -> nbformat.NotebookNode:
    if tag:
        cell.metadata["tags"] = [tag]  # how tests/test_notebooks.py finds the cells whose outputs it checks
    return cell


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating changes nothing that did not change
    return nb


# The helpers both notebooks define: where the bundled data is, and the small-settings sample of it.
DATA_HELPERS = '''
def bundled_data() -> Path:
    """data/ml-latest-small of this checkout, found from the notebooks/ folder or anywhere under the repo."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "data" / "ml-latest-small").is_dir():
            return folder / "data" / "ml-latest-small"
    raise FileNotFoundError("data/ml-latest-small not found: start Jupyter inside the coldstart repo")


def shrink(data, n_users: int | None, n_items: int | None, seed: int = 0):
    """A seeded sample of `n_users` users with their ratings of the `n_items` films they rated most
    (None: all of them). A Dataset is a frozen dataclass: `dataclasses.replace` makes the smaller copy."""
    ratings = data.ratings
    if n_users is not None:
        users = np.random.default_rng(seed).choice(ratings["user_id"].unique(), n_users, replace=False)
        ratings = ratings[ratings["user_id"].isin(users)]
    if n_items is not None:
        ratings = ratings[ratings["item_id"].isin(ratings["item_id"].value_counts().index[:n_items])]
    items = data.items[data.items["item_id"].isin(ratings["item_id"])].reset_index(drop=True)
    return dataclasses.replace(data, ratings=ratings.reset_index(drop=True), items=items)


data = shrink(load_dataset(bundled_data()), USERS, ITEMS)
print(f"{data.name}: {len(data.ratings):,} ratings by {data.ratings['user_id'].nunique()} users "
      f"of {data.ratings['item_id'].nunique():,} films")
'''


# --- quickstart ---------------------------------------------------------------------------------------------
QUICKSTART = [
    md('''
# coldstart quickstart

Fit coldstart on the bundled MovieLens latest-small, recommend films to someone who has rated five, ask a
brand-new user which films to rate first (the onboarding interview), and run a small evaluation with the
cold-start protocol: one seed, coldstart against the strongest simple baselines on this data. Everything here
is the public API: `coldstart`, `coldstart.baselines` and `coldstart.evaluation`. Every learner beside every
baseline, over several seeds with intervals, is the study: [cold_start_study.ipynb](cold_start_study.ipynb).

**Settings.** The first cell reads `COLDSTART_NOTEBOOK_SMALL`. Unset, the notebook runs the real settings: all
671 users and 9,066 films, 40 epochs (`Config`'s default), one evaluation seed: about 4 minutes with torch
on one CPU thread, nearly all of it two fits: about 2 minutes for the model, 1.5 for the evaluation (which
fits coldstart again, on its training users only); every other cell takes seconds. With
`COLDSTART_NOTEBOOK_SMALL=1` (what `tests/test_notebooks.py` sets) it takes a seeded sample of 150 users and
their 1,000 most rated films and 3 epochs: well under a minute, for CI; the numbers then say that the code
runs, not how good the model is.
'''),
    code('''
import os

SMALL = os.environ.get("COLDSTART_NOTEBOOK_SMALL") == "1"  # set by tests/test_notebooks.py: a quick run (CI)
EPOCHS = 3 if SMALL else 40  # meta-training epochs (Config's default: 40)
SEED = 0  # the evaluation's seed: the split's tie-breaks and every model (the study runs several)
USERS = 150 if SMALL else None  # a seeded sample of users (None: all 671)
ITEMS = 1000 if SMALL else None  # the sample's most rated films (None: every film)
SHOTS = (1, 3, 5, 10)  # support sizes of the evaluation's new users

import dataclasses
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's, when ipywidgets is not installed
from coldstart import ColdStartRecommender, Config, load_dataset
from coldstart.baselines import Popularity
from coldstart.evaluation import Protocol, format_table, run_seeds

%matplotlib inline
torch.set_num_threads(1)  # small tensors run fastest on one thread (the library never changes the count)
pd.set_option("display.max_colwidth", None)  # whole titles
print("small settings (CI)" if SMALL else "real settings")
'''),
    md('''
## The data

`load_dataset` recognises the MovieLens latest layout: ratings (`user_id`, `item_id`, `rating`, `timestamp`)
and an item table with the title, the genres and the year. Ids are strings at the edges.
'''),
    code(DATA_HELPERS),
    code('''
data.items.head()
'''),
    md('''
## Fit

`fit` meta-trains on every user of the log: each user is a task whose first few ratings are the support and
the rest the query, and the network learns an initialisation that a few gradient steps adapt to a user's
support.
'''),
    code('''
start = time.perf_counter()
rec = ColdStartRecommender(Config(epochs=EPOCHS, seed=0)).fit(data)
print(f"fitted in {time.perf_counter() - start:.1f}s: {rec.summary_['n_users']} users, "
      f"{rec.summary_['n_items']} items")
'''),
    md('''
## Recommend for someone new

A new user is a few rows of `user_id, item_id, rating`. Titles resolve to ids through the item table;
`recommend` adapts the model to the support in one batched pass (the fitted model is not changed) and leaves
the rated films out of the top 10. `rec.item_label` turns ids back into titles.
'''),
    code('''
my_ratings = {
    "Matrix, The (1999)": 5.0,
    "Star Wars: Episode IV - A New Hope (1977)": 5.0,
    "Alien (1979)": 4.5,
    "Toy Story (1995)": 4.0,
    "Titanic (1997)": 1.5,
}


def item_id(title: str) -> str:
    """The id of the one film with this exact title in the item table."""
    found = data.items.loc[data.items["title"] == title, "item_id"]
    if len(found) != 1:
        raise KeyError(f"{title!r}: {len(found)} films have this title")
    return found.iloc[0]


support = pd.DataFrame({"user_id": "me", "item_id": [item_id(t) for t in my_ratings],
                        "rating": list(my_ratings.values())})
support.assign(title=rec.item_label(support["item_id"].tolist()))
'''),
    code('''
recs = rec.recommend(support, k=10)
recs.assign(title=rec.item_label(recs["item_id"].tolist()))[["rank", "title", "score", "item_id"]]
''', tag="recommendations"),
    md('''
## The onboarding interview: which films to ask a newcomer

`rec.interview(answers, n)` picks the `n` films to ask each new user to rate next. It adapts the model to the
answers so far and asks the films this user most likely knows (so they can answer), spread over different
kinds of film: a candidate close to one already picked drops. With no answers it gives the first questions of
one brand-new user, `"new-user"`.
'''),
    code('''
questions = rec.interview(n=10)
questions.assign(title=rec.item_label(questions["item_id"].tolist()))[["user_id", "rank", "title", "score"]]
''', tag="interview-first"),
    md('''
Answers are rows of `user_id, item_id, rating`; a missing rating means "not seen". Say the newcomer is shown
the first five questions: loved the first, has not seen the second and the fourth, did not like the third,
liked the fifth. The next questions adapt to these answers, and a film already asked is never asked again:
'''),
    code('''
answers = questions.head(5)[["user_id", "item_id"]].assign(rating=[5.0, np.nan, 2.0, np.nan, 4.0])
follow_up = rec.interview(answers, n=5)
follow_up.assign(title=rec.item_label(follow_up["item_id"].tolist()))[["rank", "title", "score"]]
''', tag="interview-next"),
    md('''
Then recommend from the answers. The interview reads a "not seen" as a dislike (the user did not go and watch
it: the lowest rating of the scale); `recommend` takes ratings only, so that reading is spelled out here, and
the five films asked are left out of the list:
'''),
    code('''
not_seen = rec.rating_stats_["min"]  # the lowest rating of the training scale
after = rec.recommend(answers.fillna({"rating": not_seen}), k=10)
after.assign(title=rec.item_label(after["item_id"].tolist()))[["rank", "title", "score"]]
''', tag="interview-recommend"),
    md('''
Someone who has rated films already can be interviewed too. The films to ask the person from above next:
'''),
    code('''
mine = rec.interview(support, n=5)
mine.assign(title=rec.item_label(mine["item_id"].tolist()))[["user_id", "rank", "title", "score"]]
''', tag="interview-me"),
    md('''
## Evaluate: the cold-start protocol

`run_seeds` splits the log: the newest 20% of users (by first rating) are new users; for each number of shots
N a new user's first N ratings are the support and the rest the query. Each system is fitted on the other
users only and ranks the whole catalogue minus the support; a query film rated 4 or more is relevant.

A small run: one seed, and beside coldstart the three simple baselines that are strongest on this data
(`benchmarks/RESULTS.md`), all counts over the training log: the most rated films (`popularity`), the most
often rated 4 or more (`popularity_liked`), and the same over the newest quarter of the log
(`popularity_recent`: what is liked now; ml-latest-small spans 20 years and its newest users like newer
films, so this count is hard to beat here). `default_systems` (the study's) adds item mean, ALS, EASE and the
network without meta-learning.

`format_table` prints one block per number of shots, then the paired comparison: coldstart minus each system
on the same users, with a 95% interval over users.
'''),
    code('''
def systems(config: Config) -> list:
    """coldstart and the three counts, as functions from the training users' Dataset to fitted models."""
    def coldstart(train):
        return {"coldstart": ColdStartRecommender(config).fit(train)}

    def counts(train):
        models = [Popularity(), Popularity(min_rating=4.0), Popularity(min_rating=4.0, recent_share=0.25)]
        return {model.name: model.fit(train) for model in models}

    return [coldstart, counts]


start = time.perf_counter()
report = run_seeds(data, Config(epochs=EPOCHS), Protocol(shots=SHOTS), seeds=[SEED], systems=systems)
print(f"evaluated in {time.perf_counter() - start:.0f}s\\n")
print(format_table(report))
''', tag="evaluation"),
    md('''
`Report.paired()` holds the same comparison as a table (`difference` = coldstart minus the system,
`half_width` of its 95% interval, `verdict` ahead / behind / level); here nDCG@10:
'''),
    code('''
paired = report.paired()
ndcg = paired[paired["metric"] == "ndcg@10"]
ndcg.assign(cell=[f"{d:+.3f} ± {h:.3f} {v}" for d, h, v in
                  zip(ndcg["difference"], ndcg["half_width"], ndcg["verdict"])]
            ).pivot(index="system", columns="task", values="cell").loc[
    list(dict.fromkeys(ndcg["system"])), list(dict.fromkeys(ndcg["task"]))]
''', tag="paired"),
    md('''
## Plots: each metric against the number of shots, one line per system
'''),
    code('''
means = report.rows.groupby(["system", "shots"], sort=False)[["ndcg@10", "recall@10"]].mean().reset_index()
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, metric in zip(axes, ["ndcg@10", "recall@10"]):
    for system, rows in means.groupby("system", sort=False):
        ours = system == "coldstart"
        ax.plot(rows["shots"], rows[metric], marker="o", label=system, linewidth=2.5 if ours else 1.2,
                color="black" if ours else None, zorder=3 if ours else 2)
    ax.set(xlabel="shots (support ratings of a new user)", ylabel=metric, xticks=list(SHOTS), title=metric)
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.suptitle(f"{data.name}: new users, seed {SEED}")
fig.tight_layout()
plt.show()
''', tag="plot"),
]


# --- the study ----------------------------------------------------------------------------------------------
STUDY = [
    md('''
# Cold-start study: learners × shots, and the onboarding interview

1. **Learners × shots.** coldstart meta-trained with MAML, first-order MAML and Reptile beside the baselines
   (popularity, item mean, ALS and EASE fold-in, the same network without meta-learning and fine-tuned) on the
   cold-start protocol, over several seeds: nDCG@10 and Recall@10 against the number of shots, with 95%
   intervals over seeds, then the paired comparison over users.
2. **Interview strategies.** A new user is asked N films and answers those they rated (the others: "not
   seen"); coldstart's own interview against asking the most popular films, the most liked, or random ones:
   nDCG@10 of the recommendations after the interview, and the share of questions answered, against the number
   of questions.

Everything here is the public API: `coldstart` and `coldstart.evaluation`.

**Settings.** The first cell reads `COLDSTART_NOTEBOOK_SMALL`. Unset: all of the bundled MovieLens
latest-small (671 users, 9,066 films), 40 epochs, five seeds, up to 10 questions: about 45 minutes on one CPU
core (per seed, about 6 minutes for part 1, most of it tuning EASE's l2 on 9,066 films and the five network
fits, and 2-3 minutes for the interviews). With `COLDSTART_NOTEBOOK_SMALL=1`
(what `tests/test_notebooks.py` sets): 150 sampled users and their 1,000 most rated films, 2 epochs, two
seeds, up to 3 questions: well under a minute; the curves then show that the code runs, not which learner or
strategy is best.
'''),
    code('''
import os

SMALL = os.environ.get("COLDSTART_NOTEBOOK_SMALL") == "1"  # set by tests/test_notebooks.py: a quick run (CI)
EPOCHS = 2 if SMALL else 40  # meta-training epochs of every network (Config's default: 40)
SEEDS = [0, 1] if SMALL else [0, 1, 2, 3, 4]  # every model (and the split's tie-breaks), once per seed
USERS = 150 if SMALL else None  # a seeded sample of users (None: all 671)
ITEMS = 1000 if SMALL else None  # the sample's most rated films (None: every film)
SHOTS = (1, 3, 5, 10)  # support sizes of the new users
LEARNERS = ["maml", "fomaml", "reptile"]  # the first is "coldstart" in reports, the others "coldstart:NAME"
QUESTIONS = (1, 3) if SMALL else (1, 3, 5, 10)  # interview lengths scored

import dataclasses
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import torch

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's, when ipywidgets is not installed
from coldstart import Config, load_dataset
from coldstart.evaluation import Protocol, default_systems, interview_study, run_seeds

%matplotlib inline
torch.set_num_threads(1)  # small tensors run fastest on one thread (the library never changes the count)
print("small settings (CI)" if SMALL else "real settings")
'''),
    code(DATA_HELPERS),
    md('''
## 1. Learners × shots

`default_systems(config, learners=...)` fits coldstart once per learner beside every baseline; `run_seeds`
runs the whole protocol once per seed into one report whose `rows` hold one row per system, task and seed.
With timestamps the new users are the same for every seed (the newest 20%); what a seed changes is every
model's training.
'''),
    code('''
start = time.perf_counter()
report = run_seeds(data, Config(epochs=EPOCHS), Protocol(shots=SHOTS), seeds=SEEDS,
                   systems=lambda config: default_systems(config, learners=LEARNERS))
print(f"{len(SEEDS)} seeds in {time.perf_counter() - start:.0f}s; "
      f"systems: {', '.join(report.rows['system'].unique())}")
'''),
    md('''
Per system and number of shots: the mean over seeds and a 95% interval for it, from the per-seed rows
(Student's t with one degree of freedom fewer than the seeds; with two seeds it is wide, as it should be).
Popularity and item mean do not depend on the seed, so their interval is 0.
'''),
    code('''
def over_seeds(rows: pd.DataFrame, metric: str, by: str = "shots") -> pd.DataFrame:
    """Mean and 95% half-width over seeds of `metric`, per system and `by`."""
    g = rows.groupby(["system", by], sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    t = scipy.stats.t.ppf(0.975, np.maximum(g["count"] - 1, 1))
    return g.assign(half_width=np.nan_to_num(t * g["std"] / np.sqrt(g["count"])))


def mean_pm(g: pd.DataFrame, by: str) -> pd.DataFrame:
    """"mean ± half-width" cells, systems as rows (in order of appearance), `by` as columns."""
    cells = g.assign(cell=[f"{m:.3f} ± {h:.3f}" for m, h in zip(g["mean"], g["half_width"])])
    return cells.pivot(index="system", columns=by, values="cell").loc[list(dict.fromkeys(g["system"]))]


def draw(ax, curves: pd.DataFrame, by: str, band, names: dict | None = None) -> None:
    """One line per system with its 95% band (clipped to [0, 1], where the metrics live) when `band(system)`;
    coldstart's solid and bold, the others dashed."""
    colours = ["black", *plt.get_cmap("tab10").colors]
    for j, (system, g) in enumerate(curves.groupby("system", sort=False)):
        ours = system.startswith("coldstart")
        colour = colours[j % len(colours)]
        label = (names or {}).get(system, system)
        ax.plot(g[by], g["mean"], marker="o", color=colour, linestyle="-" if ours else "--",
                linewidth=2.2 if ours else 1.0, zorder=3 if ours else 2, label=label)
        if band(system):
            low, high = (g["mean"] - g["half_width"]).clip(0, 1), (g["mean"] + g["half_width"]).clip(0, 1)
            ax.fill_between(g[by], low, high, color=colour, alpha=0.15, linewidth=0)
    ax.grid(alpha=0.3)


METRICS = ["ndcg@10", "recall@10"]
curves = {metric: over_seeds(report.rows, metric) for metric in METRICS}
mean_pm(curves["ndcg@10"], "shots")
''', tag="seed-table"),
    md('''
The curves: bands for the meta-learned networks and the same network without meta-learning (the baselines'
bands, when their seed moves them at all, are in the table above).
'''),
    code('''
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, metric in zip(axes, METRICS):
    draw(ax, curves[metric], "shots", band=lambda system: system.startswith(("coldstart", "network")),
         names={"coldstart": f"coldstart:{LEARNERS[0]}"})
    ax.set(xlabel="shots (support ratings of a new user)", ylabel=metric, xticks=list(SHOTS),
           title=f"{metric}: mean ± 95% interval over {len(SEEDS)} seeds")
axes[1].legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
plt.show()
''', tag="plot-learners"),
    md('''
Seeds move the systems together, so the paired comparison is the sharper test: `Report.paired()` gives
coldstart (the first learner) minus each system on the same new users, each user's metric averaged over the
seeds, with a 95% interval over users. An interval that holds 0 is `level`.
'''),
    code('''
def forest(paired: pd.DataFrame, metric: str, reference: str) -> pd.DataFrame:
    """Plot `reference` minus each system (95% interval over users), a colour per task; the verdicts."""
    rows = paired[paired["metric"] == metric]
    tasks, systems = list(dict.fromkeys(rows["task"])), list(dict.fromkeys(rows["system"]))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.5 * len(systems)))
    for j, task in enumerate(tasks):
        g = rows[rows["task"] == task].set_index("system").reindex(systems)
        y = np.arange(len(systems)) + (j - (len(tasks) - 1) / 2) * 0.8 / len(tasks)
        ax.errorbar(g["difference"], y, xerr=g["half_width"], fmt="o", capsize=3, label=task)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set(yticks=range(len(systems)), yticklabels=systems,
           xlabel=f"{metric}: {reference} minus the system (95% interval over users)")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    plt.show()
    return rows.pivot(index="system", columns="task", values="verdict").loc[systems, tasks]


forest(report.paired(), "ndcg@10", f"coldstart:{LEARNERS[0]}")
''', tag="plot-paired"),
    md('''
## 2. The onboarding interview

`interview_study` holds the newest 20% of users out, fits coldstart on the others, and interviews each new
user: the first half of a user's ratings (in time) is what they can answer from, the second half is the query
every strategy is judged on. After N questions the answers are the support, and the catalogue minus the
answered films is ranked. The strategies differ only in what they ask: `coldstart` (the model's `interview`,
adapting to every answer), `popular` (the most rated films), `liked` (the most often rated 4 or more),
`random`.
'''),
    code('''
start = time.perf_counter()
interviews = interview_study(data, Config(epochs=EPOCHS), questions=QUESTIONS, seeds=SEEDS)
print(f"{len(SEEDS)} seeds in {time.perf_counter() - start:.0f}s; strategies: "
      f"{', '.join(interviews.rows['system'].unique())}")
asked = {metric: over_seeds(interviews.rows, metric) for metric in ["ndcg@10", "answered"]}
pd.concat({metric: mean_pm(g, "shots") for metric, g in asked.items()}, axis=1)
''', tag="interview-table"),
    code('''
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
titles = {"ndcg@10": "nDCG@10 after the interview", "answered": "share of questions answered"}
for ax, (metric, curves_) in zip(axes, asked.items()):
    draw(ax, curves_, "shots", band=lambda system: True)
    ax.set(xlabel="questions asked", ylabel=metric, xticks=list(QUESTIONS),
           title=f"{titles[metric]}: mean ± 95% over {len(SEEDS)} seeds")
axes[1].legend(fontsize=9)
fig.tight_layout()
plt.show()
''', tag="plot-interview"),
    md('''
And paired over the same users: coldstart's interview minus each other strategy, nDCG@10.
'''),
    code('''
forest(interviews.paired(), "ndcg@10", "coldstart's interview")
''', tag="plot-interview-paired"),
]


NOTEBOOKS = {"quickstart.ipynb": QUICKSTART, "cold_start_study.ipynb": STUDY}


def build() -> dict[str, nbformat.NotebookNode]:
    """Every notebook, by file name, as this script writes it."""
    return {name: notebook(cells) for name, cells in NOTEBOOKS.items()}


def main() -> int:
    for name, nb in build().items():
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
