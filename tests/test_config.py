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


def test_shares_are_checked_against_their_interval():
    assert Config(user_feature_dropout=0.0).user_feature_dropout == 0.0
    for name, bad in [("user_feature_dropout", -0.1), ("user_feature_dropout", 1.5), ("prior_recent_share", 0.0),
                      ("prior_recent_share", "some"), ("user_feature_dropout", True)]:
        with pytest.raises(ConfigError, match=name):
            Config(**{name: bad})


def test_inner_step_size_defaults_per_objective_and_follows_a_later_objective_change():
    assert Config().step_size() == 0.1 and Config(objective="rating").step_size() == 0.03
    assert Config().replace(objective="rating").step_size() == 0.03  # not frozen at the first objective's value
    assert Config(objective="rating", inner_lr=0.2).step_size() == 0.2


def test_learner_names_and_options_are_the_learners_to_check():
    """Config knows no learner (the registry is coldstart/learners/): building the learner checks its name and
    options, naming the field."""
    from coldstart.learners import make_learner
    cases = [({"learner": "metasgd", "inner_lr": 0.0}, "'inner_lr': expected a number > 0 with learner 'metasgd'"),
             ({"learner": "mamll"}, "'learner': expected one of maml, "),
             ({"learner": "encoder", "pool_support": False}, "'pool_support': expected true with learner 'encoder'"),
             ({"learner": "proximal", "learner_options": {"l2": -1.0}}, "'learner_options.l2': expected a number"),
             ({"learner": "maml", "learner_options": {"l2": 1.0}}, "learner 'maml' has no option 'l2'")]
    for change, message in cases:
        config = Config(**change)
        with pytest.raises(ConfigError, match=message):
            make_learner(config)
    assert make_learner(Config(learner="proximal", learner_options={"l2": 0.5})).options.l2 == 0.5
    with pytest.raises(ConfigError, match="'learner_options': expected a table"):
        Config(learner_options=[1])


def test_learner_options_and_no_teacher_round_trip_through_toml(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('learner = "proximal"\nteacher = "none"\n[learner_options]\nl2 = 0.25\n')
    cfg = Config.from_toml(file)
    assert cfg.learner_options == {"l2": 0.25} and cfg.teacher == "none"
    assert Config(teacher=None).teacher == "none"  # the Python API's None is "none"
    assert Config.from_dict(cfg.to_dict()) == cfg and Config.from_dict(cfg.to_toml_dict()) == cfg


def test_the_bias_scale_follows_the_objective():
    assert Config().uses_bias_scale() and not Config(objective="rating").uses_bias_scale()
    assert not Config().replace(objective="rating").uses_bias_scale()  # follows a later objective change
