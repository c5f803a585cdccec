"""ColdStartRecommender: fit / recommend / predict / save / load, DataFrames in and out, ids only at the edges.

Dimension letters: B users, I items in the catalogue, k items returned per user.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import persist
from .config import Config
from .io import Dataset
from .distributed import is_main_process
from .features import EncodedFeatures, features_to, select_rows
from .fitted import FittedState, initial_state
from .frames import check_frame, parse_support
from .ids import IdMap
from .interview import (NEW_USER, Interviewer, answers_support, check_answers, pick_diverse,
                        question_scores)
from .model import Params
from .objectives import user_negatives
from .scoring import ranked_frame, top_k
from .tasks import TaskBatch, pad_segments, segment_positions, support_batch, user_rows
from .checkpoint import fingerprint, load_checkpoint, save_checkpoint
from .train import Snapshot, StepReport, TrainingDiverged, TrainingSummary, meta_train
from .errors import NotFittedError

log = logging.getLogger(__name__)

ITEM_CHUNK_CELLS = 1 << 15  # users x items scored at once by top-k: small enough to stay in cache (fastest on CPU)
GPU_CHUNK_CELLS = 1 << 22  # on a GPU, fewer and larger chunks (about 0.5 GiB of activations at hidden width 32)


class ColdStartRecommender:
    """Meta-learns an initialisation across known users; adapts it to each new user's support ratings.

    Learned state (after `fit` or `load`) is `state_`, a FittedState; `recommend` and `predict` never change it.
    """

    name = "coldstart"

    def __init__(self, config: Config | None = None, **overrides):
        config = config or Config()
        self.config = config.replace(**overrides) if overrides else config

    @property
    def rating_predictor(self) -> bool:
        """Whether `predict` returns ratings on the data's scale (objective "rating")."""
        return self.config.objective == "rating"

    @classmethod
    def sharing_weights(cls, fitted: ColdStartRecommender, inner_steps: int, inner_lr: float | None = None
                        ) -> ColdStartRecommender:
        """A recommender built from `fitted`'s weights and its config with other adaptation settings: plain SGD of
        `inner_steps` steps of `inner_lr` (default: the fitted step size) on each user's support; e.g. a network
        trained without meta-learning, fine-tuned. Changes nothing of `fitted`."""
        state = fitted._fitted()
        config = state.config.replace(inner_steps=inner_steps, inner_lr=inner_lr or state.config.step_size(),
                                      learner="maml" if state.config.learner == "metasgd" else state.config.learner)
        rec = cls(config)
        rec.state_ = replace(state, config=config)
        return rec

    # --- fitting ---------------------------------------------------------------------------------------------
    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None, on_step: Callable[[StepReport], None] | None = None,
            checkpoint: str | Path | None = None, checkpoint_every: int = 1, resume: bool = False
            ) -> ColdStartRecommender:
        """Meta-train on a ratings log (`user_id`, `item_id`, optional `rating`, `timestamp`).

        Args:
            ratings: the interaction log, or a Dataset (whose feature tables are used unless given here).
            items: optional item features (`item_id` + feature columns).
            users: optional user features (`user_id` + feature columns).
            on_step: called after every meta-step (progress display).
            checkpoint: a file to write the training state to every `checkpoint_every` epochs (atomically).
            resume: continue from `checkpoint` when it exists (same data and config, else an error): the result
                is the model the uninterrupted fit would have given.
        Raises:
            TrainingDiverged: the loss became NaN or infinite; the model (fitted, usable) keeps the last good
                weights, and the message says when it happened.
        """
        if isinstance(ratings, Dataset):
            items = ratings.items if items is None else items
            users = ratings.users if users is None else users
            ratings = ratings.ratings
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: expected a positive number of epochs, found {checkpoint_every}")
        ratings = check_frame(ratings, "ratings")
        state = initial_state(self.config, ratings, items, users)
        device = state.net.item_bias.device
        on_epoch, start = (None, None) if checkpoint is None else _checkpoints(
            self.config, state, Path(checkpoint), checkpoint_every, resume)
        self.state_ = state
        try:
            summary = meta_train(state.net, state.learner, state.objective, state.log,
                                 features_to(state.user_feats, device), np.random.default_rng(self.config.seed),
                                 device, on_step, on_epoch, start)
        except TrainingDiverged as exc:
            self._summarise(exc.summary, ratings, device, diverged=str(exc))
            raise
        self._summarise(summary, ratings, device)
        return self

    def _summarise(self, summary: TrainingSummary, ratings: pd.DataFrame, device: torch.device, **extra) -> None:
        state = self.state_
        state.summary = {**summary.to_dict(), "n_ratings": len(ratings), "n_users": len(state.users),
                         "n_items": len(state.items),
                         "n_rated_items": int(ratings["item_id"].nunique()), "device": str(device),
                         "teacher": state.config.teacher, **extra}

    # --- recommending ----------------------------------------------------------------------------------------
    def recommend(self, support: pd.DataFrame, k: int = 10, exclude_seen: bool = True,
                  users: pd.DataFrame | None = None, user_ids: list[str] | None = None) -> pd.DataFrame:
        """Top-k items for every user in `support` (`user_id`, `item_id`, optional `rating`), in one batched pass.

        Each user is treated as new: adapted on its rows of `support`, with features from `users` when given.
        `user_ids` adds users without support rows (they get the unadapted model, with their features).
        Returns columns `user_id, rank, item_id, score`, users in order of first appearance, then `user_ids`'.
        """
        state = self._fitted()
        user_ids, batch = parse_support(support, state.items, extra_users=user_ids, scale=_scale(state))
        return self._top_k(user_ids, batch, self._new_user_feats(users, user_ids), k, exclude_seen)

    def recommend_known(self, user_ids: list[str], k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-k items for users seen in training, each adapted on its whole logged history."""
        state = self._fitted()
        if len(state.users) == 0:
            raise KeyError("this model holds no training users' histories (saved without them, e.g. `fit "
                           "--no-user-history`): give the user's ratings as a new user's support instead")
        idx = state.users.index(pd.Series(user_ids, dtype=object))
        if (idx < 0).any():
            missing = [u for u, i in zip(user_ids, idx) if i < 0][:5]
            raise KeyError(f"unknown user id(s) {', '.join(map(repr, missing))}: not in the training data")
        seg, _, rows = user_rows(state.log, idx)
        batch = support_batch(state.log.items[rows], state.log.ratings[rows], seg, len(idx), users=idx)
        return self._top_k(list(user_ids), batch, select_rows(state.user_feats, torch.as_tensor(idx)), k,
                           exclude_seen)

    def predict(self, support: pd.DataFrame, pairs: pd.DataFrame, users: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """Scores for (user_id, item_id) `pairs`, each user first adapted on its rows of `support`.

        With objective "rating" the prediction is a rating clipped to the training scale; with "implicit" it is the
        ranking score. Users absent from `support` get the unadapted initialisation; unknown items get NaN.
        """
        state = self._fitted()
        pairs = check_frame(pairs, "pairs", need_rating=False)
        user_ids, batch = parse_support(support, state.items, extra_users=list(pairs["user_id"].unique()),
                                        scale=_scale(state))
        p_user, p_item = IdMap(user_ids).index(pairs["user_id"]), state.items.index(pairs["item_id"])  # (P,)
        out = np.full(len(pairs), np.nan)
        for rows, params, proj in self._adapted(user_ids, batch, self._new_user_feats(users, user_ids)):
            sel = np.flatnonzero((p_user >= rows[0]) & (p_user <= rows[-1]) & (p_item >= 0))
            sel = sel[np.argsort(p_user[sel], kind="stable")]  # the chunk's pairs, grouped by user
            seg = p_user[sel] - rows[0]
            (items,), mask = pad_segments(seg, segment_positions(np.bincount(seg, minlength=len(rows))),
                                          [p_item[sel]], len(rows), [torch.int64])  # (b, P) each
            with torch.no_grad():
                out[sel] = state.net.scores(params, proj, items.to(proj.device))[mask.to(proj.device)].cpu().numpy()
        if self.rating_predictor:
            out = np.clip(out, state.rating_stats["min"], state.rating_stats["max"])
        if (p_item < 0).any():
            log.warning("%d pair(s) name items the model does not know: their prediction is NaN", (p_item < 0).sum())
        return pd.DataFrame({"user_id": pairs["user_id"].to_numpy(), "item_id": pairs["item_id"].to_numpy(),
                             "prediction": out})

    def interview(self, answers: pd.DataFrame | None = None, n: int = 10, users: pd.DataFrame | None = None,
                  settings: Interviewer | None = None, user_ids: list[str] | None = None) -> pd.DataFrame:
        """The `n` items to ask each new user to rate next, given its answers so far (see interview.py).

        Args:
            answers: `user_id, item_id, rating` rows; a missing rating means the user has not seen the item. None:
                the first questions for one brand-new user ("new-user").
            users: the users' features, when they gave them at sign-up.
            user_ids: users to ask besides those in `answers` (e.g. users who have answered nothing yet).
            settings: how questions are chosen (default: `Interviewer()`).
        Returns columns `user_id, rank, item_id, score`; an item already answered is never asked again.
        """
        if n < 1:
            raise ValueError(f"n must be a positive integer, found {n}")
        state, settings = self._fitted(), settings or Interviewer()
        answers = check_answers(answers)
        asked_users = list(dict.fromkeys(answers["user_id"].tolist() + list(user_ids or []))) or [NEW_USER]
        support = answers_support(answers, self.config.objective, state.rating_stats["min"], settings.unseen)
        user_ids, batch = parse_support(support, state.items, extra_users=asked_users, scale=_scale(state))
        pos, item = IdMap(user_ids).index(answers["user_id"]), state.items.index(answers["item_id"])
        asked = torch.zeros((len(user_ids), len(state.items)), dtype=torch.bool)  # (B, I)
        asked[pos[item >= 0], item[item >= 0]] = True
        net, cfg = state.net, state.config
        with torch.no_grad():
            item_vecs = net.item_vectors()  # (I, Di)
        out_items, out_scores = [], []
        for rows, params, proj in self._adapted(user_ids, batch, self._new_user_feats(users, user_ids)):
            candidates, scores = question_scores(
                net, state.objective, params, proj, _rows(batch, rows).support.to(proj.device),
                asked[rows].to(proj.device), [user_ids[r] for r in rows], settings, cfg.n_negatives, cfg.seed,
                state.rating_stats["max"])  # (b, C) each
            picked, picked_scores = pick_diverse(scores, candidates, item_vecs, n, settings.diversity)  # (b, n)
            out_items.append(picked.cpu().numpy())
            out_scores.append(picked_scores.cpu().numpy())
        return ranked_frame(user_ids, state.items, np.concatenate(out_items), np.concatenate(out_scores))  # (B, n)

    def item_label(self, item_ids: list[str]) -> list[str] | None:
        """Human-readable labels (e.g. titles) of items, when the training data had them."""
        state = self._fitted()
        if state.item_labels is None:
            return None
        idx = state.items.index(pd.Series(item_ids, dtype=object))
        return [state.item_labels[i] if i >= 0 else "" for i in idx]

    # --- internals -------------------------------------------------------------------------------------------
    def _new_user_feats(self, users: pd.DataFrame | None, user_ids: list[str]) -> EncodedFeatures:
        encoder = self._fitted().user_encoder
        if users is None:
            return encoder.empty(len(user_ids))
        return encoder.transform(users.assign(user_id=users["user_id"].astype(str)), user_ids)

    def _adapted(self, user_ids: list[str], batch: TaskBatch, feats: EncodedFeatures
                 ) -> Iterator[tuple[np.ndarray, Params, torch.Tensor]]:
        """Yields (user rows, their adapted parameters, the catalogue's (I, H) projection), eval_batch_size users
        at a time, each user adapted on its own support against its own negatives."""
        state = self._fitted()
        cfg = state.config
        net, learner, device = state.net, state.learner, state.net.item_bias.device
        with torch.no_grad():
            item_vecs = net.item_vectors()  # (I, Di)
            proj = net.item_projection(item_vecs)  # (I, H)
        for start in range(0, len(batch), cfg.eval_batch_size):
            rows = np.arange(start, min(start + cfg.eval_batch_size, len(batch)))
            support = _rows(batch, rows).support.to(device)
            negatives = user_negatives([user_ids[r] for r in rows], len(state.items), cfg.n_negatives,
                                       cfg.seed).to(device)
            sub_feats = features_to(select_rows(feats, torch.as_tensor(rows)), device)
            with torch.no_grad():
                begin = learner.start(net, sub_feats, item_vecs, support)
            yield rows, learner.adapt(net, state.objective, proj, support, negatives, begin, training=False), proj

    def _top_k(self, user_ids: list[str], batch: TaskBatch, feats: EncodedFeatures, k: int,
               exclude_seen: bool) -> pd.DataFrame:
        """The ranked frame of each user's k best items, eval_batch_size adapted users at a time (`scoring.top_k`)."""
        if k < 1:
            raise ValueError(f"k must be a positive integer, found {k}")
        state = self._fitted()
        net, n_items = state.net, len(state.items)
        top_items, top_scores = [np.zeros((0, min(k, n_items)), np.int64)], [np.zeros((0, min(k, n_items)))]
        for rows, params, proj in self._adapted(user_ids, batch, feats):
            exclude = _rows(batch, rows).support.seen().to(proj.device) if exclude_seen else None  # (b, S)
            cells = ITEM_CHUNK_CELLS if proj.device.type == "cpu" else GPU_CHUNK_CELLS
            with torch.no_grad():
                top_s, top_i = top_k(lambda a, b: net.score_slice(params, proj, a, b),
                                     len(rows), n_items, k, exclude, max(1, cells // len(rows)))  # (b, k)
            top_items.append(top_i.cpu().numpy())
            top_scores.append(top_s.cpu().numpy())
        return ranked_frame(user_ids, state.items, np.concatenate(top_items), np.concatenate(top_scores))

    def _fitted(self) -> FittedState:
        if not hasattr(self, "state_"):
            raise NotFittedError("this ColdStartRecommender is not fitted yet: call fit() or load() first")
        return self.state_

    # --- the learned state, by its usual names ---------------------------------------------------------------
    items_ = property(lambda self: self._fitted().items)
    users_ = property(lambda self: self._fitted().users)
    net_ = property(lambda self: self._fitted().net)
    log_ = property(lambda self: self._fitted().log)
    summary_ = property(lambda self: self._fitted().summary)
    item_labels_ = property(lambda self: self._fitted().item_labels)
    item_encoder_ = property(lambda self: self._fitted().item_encoder)
    user_encoder_ = property(lambda self: self._fitted().user_encoder)
    user_feats_ = property(lambda self: self._fitted().user_feats)
    rating_stats_ = property(lambda self: self._fitted().rating_stats)
    device_ = property(lambda self: self._fitted().net.item_bias.device)

    # --- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path, user_history: bool = True) -> Path:
        """Write the model folder (model.json, weights.safetensors and, unless `user_history` is False, the training
        users' histories that `recommend_known` needs), replacing any model there atomically; returns its path."""
        return persist.save_model(self._fitted(), Path(path), user_history=user_history)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> ColdStartRecommender:
        """Read a model directory written by `save` (never unpickles); `device` overrides the saved config's."""
        state = persist.load_model(Path(path), device)
        rec = cls(state.config)
        rec.state_ = state
        return rec


def _checkpoints(config: Config, state: FittedState, path: Path, every: int, resume: bool
                 ) -> tuple[Callable[[Snapshot], None], Snapshot | None]:
    """(what saves a checkpoint to `path` after every `every` epochs and the last, the Snapshot to resume from:
    the one in `path` when `resume` and it exists, else None)."""
    data = fingerprint(state)
    start = None
    if resume and path.exists():
        start = load_checkpoint(path, config, data)
        log.warning("resuming from %s after epoch %d of %d", path, start.epoch, config.epochs)

    def on_epoch(snap: Snapshot) -> None:
        due = snap.epoch % every == 0 or snap.epoch == config.epochs
        if due and is_main_process():  # with several training processes, rank 0 writes
            save_checkpoint(path, snap, config, data)
    return on_epoch, start


def _scale(state: FittedState) -> tuple[float, float]:
    """The training ratings' (min, max): support ratings far outside it are errors (`frames.check_scale`)."""
    return state.rating_stats["min"], state.rating_stats["max"]


def _rows(batch: TaskBatch, rows: np.ndarray) -> TaskBatch:
    return batch.rows(torch.as_tensor(rows))
