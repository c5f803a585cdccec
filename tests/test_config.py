"""Config validation names the field, the value and the legal range; files with unknown keys are errors."""
from __future__ import annotations

import pytest

from coldstart.config import Config, ConfigError


@pytest.mark.parametrize("change, message", [
    ({"objective": "ranking"}, "'objective': expected one of implicit, rating, found 'ranking'"),
    ({"inner_steps": -1}, "'inner_steps': expected an integer >= 0, found -1"),
    ({"meta_lr": 0.0}, "'meta_lr': expected a number > 0"),
    ({"hidden": ()}, "'hidden'"),
    ({"support_min": 5, "support_max": 2}, "'support_max': expected >= support_min"),
    ({"epochs": 2.5}, "'epochs': expected an integer"),
])
def test_bad_values_are_named(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config(**change)


def test_toml_round_trip_and_unknown_keys(tmp_path):
    good = tmp_path / "c.toml"
    good.write_text('objective = "rating"\nhidden = [8, 4]\ninner_steps = 3\n')
    cfg = Config.from_toml(good)
    assert cfg.objective == "rating" and cfg.hidden == (8, 4) and cfg.inner_steps == 3
    assert Config.from_dict(cfg.to_dict()) == cfg
    bad = tmp_path / "bad.toml"
    bad.write_text("inner_step = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: unknown config key\(s\) 'inner_step'"):
        Config.from_toml(bad)


def test_validation_fraction_is_a_share_of_at_most_half():
    assert Config(validation_fraction=0.1).validation_fraction == 0.1
    for bad in (-0.1, 0.6, "some"):
        with pytest.raises(ConfigError, match="validation_fraction"):
            Config(validation_fraction=bad)


def test_inner_step_size_defaults_per_objective_and_follows_a_later_objective_change():
    assert Config().step_size() == 0.1 and Config(objective="rating").step_size() == 0.03
    assert Config().replace(objective="rating").step_size() == 0.03  # not frozen at the first objective's value
    assert Config(objective="rating", inner_lr=0.2).step_size() == 0.2
    with pytest.raises(ConfigError, match="'inner_lr': expected a number > 0 with learner 'metasgd'"):
        Config(learner="metasgd", inner_lr=0.0)
    with pytest.raises(ConfigError, match="'learner': expected one of maml, fomaml"):
        Config(learner="mamll")
    with pytest.raises(ConfigError, match="'pool_support': expected true with learner 'encoder'"):
        Config(learner="encoder", pool_support=False)


def test_the_bias_scale_defaults_to_implicit_only_and_can_be_forced():
    assert Config().uses_bias_scale() and not Config(objective="rating").uses_bias_scale()
    assert Config(objective="rating", user_bias_scale=True).uses_bias_scale()
    assert not Config(user_bias_scale=False).uses_bias_scale()
    assert not Config().replace(objective="rating").uses_bias_scale()  # follows a later objective change
