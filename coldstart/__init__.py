"""coldstart: meta-learned (MeLU-style MAML) recommendations for users with a handful of ratings."""
__version__ = "0.1.0"

from .config import Config, ConfigError
from .data import DataError, Dataset, load_features, load_ratings
from .ids import IdMap
from .formats import load_dataset
from .persist import ModelFormatError
from .recommender import ColdStartRecommender, NotFittedError
from .synthetic import make_synthetic

__all__ = [
    "ColdStartRecommender", "Config", "ConfigError", "DataError", "Dataset", "IdMap", "ModelFormatError",
    "NotFittedError", "load_dataset", "load_features", "load_ratings", "make_synthetic", "__version__",
]
