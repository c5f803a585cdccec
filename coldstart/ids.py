"""IdMap: opaque string ids at the edges <-> contiguous indices inside. The only place ids are translated."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


class IdMap:
    """Opaque string ids ↔ contiguous indices 0..n-1, in the order given.

    Args:
        ids: the distinct ids; index `i` is `ids[i]`.

    Raises:
        ValueError: an id appears twice.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._index = pd.Index(list(ids), dtype=object)
        if not self._index.is_unique:
            repeated = self._index[self._index.duplicated()][0]
            raise ValueError(f"IdMap ids must be unique, found {repeated!r} twice")
        self._ids = self._index.to_numpy()

    @classmethod
    def from_values(cls, values: Iterable[str]) -> IdMap:
        """The distinct ids of `values` in first-seen order (of a Categorical: its categories that occur)."""
        values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        if isinstance(values.dtype, pd.CategoricalDtype):
            first = pd.unique(values.cat.codes.to_numpy())  # (C,) category codes in first-seen order
            return cls(values.cat.categories.to_numpy(object)[first[first >= 0]])
        return cls(values.unique())

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._index

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    def index(self, ids: Sequence[str] | pd.Series) -> np.ndarray:
        """Indices (int64) of `ids`; -1 for an id not in the map. A Categorical is looked up by its categories,
        then taken by its codes: no per-row hashing of strings."""
        if isinstance(ids, str):
            raise TypeError("IdMap.index takes a sequence of ids; wrap a single id in a list")
        if isinstance(getattr(ids, "dtype", None), pd.CategoricalDtype):
            ids = pd.Series(ids)  # a Categorical or a CategoricalIndex -> .cat
            found = self.index(ids.cat.categories.to_numpy(object))  # (C,)
            return np.append(found, -1)[ids.cat.codes.to_numpy()]  # (n,) code -1 (missing) -> -1
        return self._index.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64, copy=False)

    def ids(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The ids (object array of str) at `indices`.

        Raises:
            IndexError: an index is outside 0..len-1 (so -1 never silently means the last id).
        """
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            found = f"{indices.min()}..{indices.max()}"
            raise IndexError(f"IdMap indices must lie in 0..{len(self) - 1}, found {found}")
        return self._ids[indices]

    def to_list(self) -> list[str]:
        """The ids in index order."""
        return list(self._ids)
