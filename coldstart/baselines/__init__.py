"""Non-meta baselines behind the recommender interface: popularity (overall and among users with the same
features), item mean + shrunk user offset, ALS fold-in, EASE, and EASE blended with a popularity prior.

Each baseline has `fit`, `recommend` and `predict` like `ColdStartRecommender` (DataFrames in and out, ids only at
the edges) and treats every user of a `support` frame as new, described only by its support rows. All users of a
call are scored at once, in chunks of the (B, I) score matrix; nothing loops over users. `rating_predictor` says
whether `predict` gives ratings on the data's scale (so MAE/RMSE make sense); `name` labels the model in reports.
Side features are not used, except that `items` widens the catalogue and `FeaturePopularity` reads `users`.

One module per model family: `popularity` (Popularity, FeaturePopularity), `item_mean` (ItemMeanOffset), `als`
(ALSFoldIn), `ease` (EASEFoldIn), `blend` (Blend); `base` holds `_Baseline`, the shared `recommend` / `predict`
plumbing, and the helpers more than one of them uses; `validation` the users carved from a training log on which the
`tuned` constructors choose their settings.

Dimension letters: B users of a support frame, I items in the catalogue, F latent factors, P pairs, k list length,
U training users, V user-feature values.
"""
from .als import ALSFoldIn
from .blend import Blend
from .ease import EASEFoldIn
from .item_mean import ItemMeanOffset
from .popularity import FeaturePopularity, Popularity

__all__ = ["ALSFoldIn", "Blend", "EASEFoldIn", "FeaturePopularity", "ItemMeanOffset", "Popularity"]
