"""Side features: detect each column's kind, encode rows into token ids and numeric values.

Kinds:
    categorical  one token per row (text, or an integer code with few distinct values)
    multi        `|`-separated tokens per row (`Action|Comedy`), pooled by their mean embedding
    numeric      standardised numbers (missing, infinite: the mean; clipped at NUMERIC_CLIP deviations)
    label        nearly unique per row (a title), and so are its `|`-separated tokens (a few artists called
                 `A|B` among thousands): not a feature, shown in human-readable output

Token ids: 0 is padding (no value), 1 is out-of-vocabulary, 2.. the values seen at fit time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .io.values import to_float

PAD, OOV = 0, 1
MAX_INT_CATEGORIES = 32  # an integer column with at most this many distinct values is categorical (codes)
LABEL_UNIQUE_RATIO = 0.5  # a text column with more distinct values than this fraction of rows is a label
MIN_TOKEN_COUNT = 2  # values seen fewer times map to OOV (keeps OOV trained, vocabularies small)
LABEL_NAMES = ("title", "name", "movie_title")
NUMERIC_CLIP = 1e3  # standardised numbers are clipped here: a stray 1e308 must not feed the network an inf


@dataclass
class Field:
    """One feature column and how it is encoded."""

    name: str
    kind: str  # "categorical" | "multi" | "numeric"
    vocab: list[str] = field(default_factory=list)  # token values; token id = position + 2
    mean: float = 0.0
    std: float = 1.0

    @property
    def n_tokens(self) -> int:
        return len(self.vocab) + 2


@dataclass
class EncodedFeatures:
    """Features of N rows: one (N, T_f) token tensor per token field and an (N, F) numeric tensor."""

    tokens: list[torch.Tensor]  # each (N, T_f) int64, PAD-padded
    numeric: torch.Tensor  # (N, F) float32


@dataclass
class FeatureEncoder:
    """Encodes a side-feature table (`item_id`/`user_id` first) into token ids and numbers."""

    id_col: str
    fields: list[Field] = field(default_factory=list)
    label: str | None = None

    @property
    def token_fields(self) -> list[Field]:
        return [f for f in self.fields if f.kind != "numeric"]

    @property
    def numeric_fields(self) -> list[Field]:
        return [f for f in self.fields if f.kind == "numeric"]

    @classmethod
    def fit(cls, table: pd.DataFrame | None, id_col: str) -> FeatureEncoder:
        """Detect each column's kind and learn vocabularies and scales; None gives an encoder of no features."""
        encoder = cls(id_col=id_col)
        if table is None:
            return encoder
        for name in table.columns:
            if name == id_col:
                continue
            kind = column_kind(table[name])
            if kind == "label":
                encoder.label = encoder.label or name
                if str(name).lower() in LABEL_NAMES:
                    encoder.label = name
            elif kind != "empty":
                encoder.fields.append(_fit_field(str(name), kind, table[name]))
        return encoder

    def transform(self, table: pd.DataFrame | None, ids: list[str] | np.ndarray) -> EncodedFeatures:
        """Encode the rows of `table` for `ids`, in that order; ids absent from the table get OOV / zeros."""
        n = len(ids)
        rows = _align(table, self.id_col, ids)
        tokens = [_encode_tokens(f, rows[f.name] if rows is not None else None, n) for f in self.token_fields]
        numeric = np.zeros((n, len(self.numeric_fields)), dtype=np.float32)
        for j, f in enumerate(self.numeric_fields):
            if rows is not None:
                numeric[:, j] = _standardise(f, rows[f.name])
        return EncodedFeatures(tokens=[torch.from_numpy(t) for t in tokens], numeric=torch.from_numpy(numeric))

    def empty(self, n: int) -> EncodedFeatures:
        """Features of n rows about which nothing is known (OOV tokens, zero numbers)."""
        return self.transform(None, [""] * n)

    def labels(self, table: pd.DataFrame | None, ids: list[str]) -> list[str] | None:
        """The label column (e.g. titles) for `ids`, or None when the table has none."""
        rows = _align(table, self.id_col, ids)
        if self.label is None or rows is None:
            return None
        return rows[self.label].fillna("").astype(str).tolist()

    def to_dict(self) -> dict[str, Any]:
        return {"id_col": self.id_col, "label": self.label, "fields": [vars(f) for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureEncoder:
        return cls(id_col=d["id_col"], label=d["label"], fields=[Field(**f) for f in d["fields"]])


def column_kind(column: pd.Series) -> str:
    """`categorical`, `multi`, `numeric`, `label` or `empty` (no values at all)."""
    values = column.dropna()
    if values.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
        is_code = bool((numbers == numbers.round()).all()) and numbers.nunique() <= MAX_INT_CATEGORIES
        return "categorical" if is_code else "numeric"
    text = values.astype(str)
    if _nearly_unique(text) and _nearly_unique(_split_tokens(text, "multi").explode().dropna()):
        return "label"  # names, even the few that hold a `|` ("Sunn O|||" among Last.fm's artists)
    return "multi" if text.str.contains("|", regex=False).any() else "categorical"


def _nearly_unique(values: pd.Series) -> bool:
    """More than 20 values, more than LABEL_UNIQUE_RATIO of them distinct."""
    return len(values) > 20 and values.nunique() > LABEL_UNIQUE_RATIO * len(values)


def _fit_field(name: str, kind: str, column: pd.Series) -> Field:
    if kind == "numeric":
        values = to_float(column)
        with np.errstate(all="ignore"):  # 1e308s overflow: then the plain scale below
            finite = values[np.isfinite(values)]
            mean, std = float(finite.mean()), float(finite.std())
        return Field(name, kind, mean=mean if np.isfinite(mean) else 0.0,
                     std=std if np.isfinite(std) and std > 0 else 1.0)
    counts = _split_tokens(column, kind).explode().dropna().value_counts()
    vocab = sorted(str(v) for v, c in counts.items() if c >= MIN_TOKEN_COUNT)
    return Field(name, kind, vocab=vocab)


def _standardise(f: Field, column: pd.Series) -> np.ndarray:
    """(N,) standardised values: missing and non-finite ones 0 (the mean), the rest within +-NUMERIC_CLIP."""
    with np.errstate(all="ignore"):
        z = (to_float(column).to_numpy() - f.mean) / f.std
    return np.clip(np.where(np.isfinite(z), z, 0.0), -NUMERIC_CLIP, NUMERIC_CLIP)


def _split_tokens(column: pd.Series, kind: str) -> pd.Series:
    """Each row's list of token strings (missing values give an empty list)."""
    text = column.map(_as_token, na_action="ignore").astype(object)
    if kind == "multi":
        return text.map(lambda s: [t.strip() for t in s.split("|") if t.strip()] if isinstance(s, str) else [])
    return text.map(lambda s: [s] if isinstance(s, str) and s != "" else [])


def _as_token(value: Any) -> str:
    """`3.0` and `3` are one category; strings pass through."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _encode_tokens(f: Field, column: pd.Series | None, n: int) -> np.ndarray:
    if column is None:
        return np.full((n, 1), OOV, dtype=np.int64)
    lookup = {v: i + 2 for i, v in enumerate(f.vocab)}
    lists = _split_tokens(column, f.kind).tolist()
    width = max(1, max((len(t) for t in lists), default=1))
    out = np.full((n, width), PAD, dtype=np.int64)
    for row, toks in enumerate(lists):
        out[row, : len(toks)] = [lookup.get(t, OOV) for t in toks]
        if not toks and f.kind == "categorical":
            out[row, 0] = OOV
    return out


def _align(table: pd.DataFrame | None, id_col: str, ids: list[str] | np.ndarray) -> pd.DataFrame | None:
    """Rows of `table` in the order of `ids` (all-missing rows for ids it lacks)."""
    if table is None:
        return None
    return table.drop_duplicates(id_col, keep="last").set_index(id_col).reindex(pd.Index(ids, dtype=object))


def select_rows(feats: EncodedFeatures, rows: torch.Tensor, blank: torch.Tensor | None = None) -> EncodedFeatures:
    """The features of `rows` (B,); rows where `blank` (B,) is True become unknown (OOV tokens, zero numbers)."""
    tokens = [t[rows] for t in feats.tokens]  # each (B, T)
    numeric = feats.numeric[rows]  # (B, F)
    if blank is not None:
        tokens = [torch.where(blank.unsqueeze(1), _oov_like(t), t) for t in tokens]
        numeric = numeric.masked_fill(blank.unsqueeze(1), 0.0)
    return EncodedFeatures(tokens, numeric)


def _oov_like(tokens: torch.Tensor) -> torch.Tensor:
    """(B, T) rows holding a single OOV token."""
    out = torch.full_like(tokens, PAD)
    out[:, 0] = OOV
    return out


def features_to(feats: EncodedFeatures, device: torch.device | str) -> EncodedFeatures:
    return EncodedFeatures([t.to(device) for t in feats.tokens], feats.numeric.to(device))
