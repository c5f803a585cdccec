"""What a study leaves in its output folder after every trial: best.toml (a config file for `coldstart fit --config`),
trials.csv and trials.png; and the progress line of a trial."""
from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import tomli_w

from ..config import Config
from ..files import atomic_file
from .space import best_config

if TYPE_CHECKING:
    import optuna


def write_outputs(study: optuna.Study, base: Config, output: Path, fixed: Collection[str] = ()) -> list[Path]:
    """trials.csv, trials.png and (once a trial has completed) best.toml under `output`, each written atomically."""
    frame = trials_frame(study)
    files = [atomic_file(output / "trials.csv", lambda p: frame.to_csv(p, index=False))]
    title = f"coldstart tune: {study.user_attrs['fingerprint']['data']}, learner {base.learner}"
    files.append(atomic_file(output / "trials.png", lambda p: plot_trials(frame, p, title)))
    best = best_trial(study)
    if best is not None:
        shots = ", ".join(best.user_attrs.get("ndcg", {}))
        seeds = ", ".join(map(str, study.user_attrs["fingerprint"]["seeds"]))
        header = [f"coldstart tune: the best of {len(frame)} trials, trial {best.number}: validation nDCG@10 "
                  f"{best.value:.4f} (mean over shots {shots} and seeds {seeds})",
                  f"study: {output / 'study.sqlite3'}",
                  f"tuned: {', '.join(best.params)}; the rest as in the base config"]
        text = best_toml(best_config(best, base, fixed), header)
        files.append(atomic_file(output / "best.toml", lambda p: Path(p).write_text(text)))
    return files


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial of the highest value (the first of equals); None while none has completed."""
    done = [t for t in study.trials if t.value is not None and math.isfinite(t.value)]
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def best_toml(config: Config, header: list[str]) -> str:
    """A config file's text, which `Config.from_toml` reads back to `config`: the `header` lines as comments, a blank
    line, then the config."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header)
    return f"{comments}\n{tomli_w.dumps(config.to_toml_dict())}"


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, nDCG per shot count (`ndcg_<shots>`), params, seconds."""
    rows = []
    for t in study.trials:
        shots = {f"ndcg_{n}": v for n, v in t.user_attrs.get("ndcg", {}).items()}
        seconds = t.duration.total_seconds() if t.duration else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **shots, **t.params,
                     "seconds": seconds})
    return pd.DataFrame(rows)


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One progress line: trial number, value, best so far, seconds, params."""
    best = best_trial(study)
    value = f"{trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
    if "error" in trial.user_attrs:
        value += f" ({trial.user_attrs['error']})"
    seconds = trial.duration.total_seconds() if trial.duration else float("nan")
    head = f"trial {trial.number}: {value}"
    if best is not None:
        head += f" (best {best.value:.4f}, trial {best.number})"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    return f"{head} in {seconds:.0f}s  {params}"


def plot_trials(frame: pd.DataFrame, path: str | Path, title: str) -> None:
    """Validation score per trial (dots) and the best so far (a step line)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if "value" in frame and frame["value"].notna().any():
        done = frame[frame["value"].notna()]
        ax.plot(done["number"], done["value"], "o", label="trial")
        ax.step(done["number"], done["value"].cummax(), where="post", label="best so far")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation nDCG@10 (mean over shots)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
