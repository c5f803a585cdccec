"""The model directory: round trips, the user-history file, checksums, model.json validation, the format-4 upgrade,
permissions under the umask, and readers / writers in concurrent processes."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file, save_file

from coldstart import ColdStartRecommender, ModelFormatError
from coldstart.cli import app
from coldstart.files import atomic_file
from coldstart.model_json import FORMAT_VERSION
from coldstart.persist import check_target
from tests.conftest import TINY, as_format_5, support_of
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_save_load_round_trips_identical_recommendations(fitted, tiny_data, tmp_path):
    support = support_of(tiny_data, ["u1", "u9"])
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "user_history.safetensors", "weights.safetensors"]
    loaded = ColdStartRecommender.load(path)
    pd.testing.assert_frame_equal(loaded.recommend(support, k=8), fitted.recommend(support, k=8))
    pd.testing.assert_frame_equal(loaded.recommend_known(["u3"]), fitted.recommend_known(["u3"]))
    assert loaded.config == fitted.state_.config  # the settled config the fit recorded
    # saving again replaces the model through the other file names, and leaves nothing else behind
    fitted.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "user_history.alt.safetensors",
                                                      "weights.alt.safetensors"]
    assert not list(tmp_path.glob(".*"))
    pd.testing.assert_frame_equal(ColdStartRecommender.load(path).recommend(support, k=8),
                                  fitted.recommend(support, k=8))


def test_without_user_history_the_model_holds_no_training_user(fitted, tiny_data, tmp_path):
    path = fitted.save(tmp_path / "m", user_history=False)
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.safetensors"]
    stored = b"".join(p.read_bytes() for p in path.iterdir())
    assert not any(f'"{u}"'.encode() in stored for u in fitted.users_.to_list())  # no training user id anywhere
    loaded = ColdStartRecommender.load(path)
    support = support_of(tiny_data, ["u1", "u9"])
    pd.testing.assert_frame_equal(loaded.recommend(support, k=8), fitted.recommend(support, k=8))
    with pytest.raises(KeyError, match="no training users' histories"):
        loaded.recommend_known(["u3"])
    # re-saving with histories brings the file back; without, it goes again
    fitted.save(path)
    assert (path / "user_history.safetensors").exists() or (path / "user_history.alt.safetensors").exists()
    fitted.save(path, user_history=False)
    assert not list(path.glob("user_history*"))


def flip_one_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncated", "one byte", "swapped", "missing", "history byte"])
def test_load_refuses_a_changed_file_naming_it(fitted, tiny_data, tmp_path, damage):
    path = fitted.save(tmp_path / "m")
    weights = path / "weights.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "one byte":
        flip_one_byte(weights)
    elif damage == "swapped":  # the weights of another model, same shapes
        other = ColdStartRecommender(fitted.config.replace(seed=5)).fit(tiny_data).save(tmp_path / "other")
        weights.write_bytes((other / "weights.safetensors").read_bytes())
    elif damage == "missing":
        weights.unlink()
    else:
        flip_one_byte(path / "user_history.safetensors")
    name = "user_history.safetensors" if damage == "history byte" else "weights.safetensors"
    expected = "is missing" if damage == "missing" else "does not match model.json"
    with pytest.raises(ModelFormatError, match=expected) as err:
        ColdStartRecommender.load(path)
    assert name in str(err.value)
    result = invoke("recommend", "--model", path, "--rate", "i1=5")
    assert result.exit_code == 1 and name in result.stderr and "Traceback" not in result.output


def rewrite_meta(path: Path, change) -> None:
    meta = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps(change(meta)))


@pytest.mark.parametrize("change, message", [
    (lambda m: [m], "expected a JSON object, found list"),
    (lambda m: {k: v for k, v in m.items() if k != "items"}, r"missing key\(s\) \['items'\]"),
    (lambda m: {**m, "extra": 1}, r"unknown key\(s\) \['extra'\]"),
    (lambda m: {**m, "items": "i1"}, "key 'items': expected a list, found str"),
    (lambda m: {**m, "rating_stats": {**m["rating_stats"], "max": "5"}}, "'rating_stats': expected a finite"),
    (lambda m: {**m, "files": {**m["files"], "weights": {**m["files"]["weights"], "name": "../w.safetensors"}}},
     "entry 'weights': expected a name among"),
    (lambda m: {**m, "item_encoder": {}}, "encoder or the objective is not valid"),
    (lambda m: {**m, "config": {**m["config"], "hidden": "wide"}}, "hidden"),
])
def test_a_bad_model_json_is_a_clean_error_everywhere(fitted, tmp_path, change, message):
    path = fitted.save(tmp_path / "m")
    rewrite_meta(path, change)
    with pytest.raises(ModelFormatError, match=message):
        ColdStartRecommender.load(path)
    for command in (["info", "--model", path], ["recommend", "--model", path, "--rate", "i1=5"]):
        result = invoke(*command)
        if command[0] == "info" and "encoder" in message or "hidden" in message:
            continue  # info shows model.json as it is; only loading builds the encoders and the config
        assert result.exit_code == 1 and "error:" in result.stderr and "Traceback" not in result.output, command


def test_other_format_versions_are_refused_and_format_4_can_be_upgraded(fitted, tiny_data, tmp_path):
    path = fitted.save(tmp_path / "m")
    support = support_of(tiny_data, ["u1", "u9"])
    expected = fitted.recommend(support, k=8)
    # make the format-4 layout: every tensor in weights.safetensors, the users in model.json, no checksums
    tensors = {**load_file(path / "weights.safetensors"), **load_file(path / "user_history.safetensors")}
    (path / "user_history.safetensors").unlink()
    save_file(tensors, path / "weights.safetensors")
    rewrite_meta(path, lambda m: {**{k: v for k, v in m.items() if k != "files"}, "format_version": 4,
                                  "users": fitted.users_.to_list()})
    with pytest.raises(ModelFormatError, match="coldstart upgrade --model"):
        ColdStartRecommender.load(path)
    result = invoke("upgrade", "--model", path)
    assert result.exit_code == 0, result.output
    upgraded = ColdStartRecommender.load(path)
    pd.testing.assert_frame_equal(upgraded.recommend(support, k=8), expected)
    pd.testing.assert_frame_equal(upgraded.recommend_known(["u3"]), fitted.recommend_known(["u3"]))
    again = invoke("upgrade", "--model", path)
    assert again.exit_code == 1 and "nothing to upgrade" in again.stderr
    rewrite_meta(path, lambda m: {**m, "format_version": 99})
    with pytest.raises(ModelFormatError, match="format_version 99"):
        ColdStartRecommender.load(path)
    with pytest.raises(ModelFormatError, match="not a coldstart model directory"):
        ColdStartRecommender.load(tmp_path)


@pytest.mark.parametrize("learner", ["maml", "proximal"])
def test_a_format_5_model_loads_as_it_is_and_upgrades_to_the_current_format(tiny_data, tmp_path, learner):
    """Format 5's config had fields that lost (adapt, validation_fraction, ...) and proximal_l2 on the Config: it
    still loads, recommends the same, and `coldstart upgrade` rewrites it in the current format."""
    rec = ColdStartRecommender(TINY.replace(epochs=1, learner=learner, learner_options={"l2": 0.5}
                                            if learner == "proximal" else {})).fit(tiny_data)
    path = rec.save(tmp_path / "m")
    support = support_of(tiny_data, ["u1", "u9"])
    rewrite_meta(path, as_format_5)
    loaded = ColdStartRecommender.load(path)
    assert loaded.state_.config == rec.state_.config
    pd.testing.assert_frame_equal(loaded.recommend(support, k=8), rec.recommend(support, k=8))
    result = invoke("upgrade", "--model", path)
    assert result.exit_code == 0, result.output
    meta = json.loads((path / "model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and "adapt" not in meta["config"]
    assert meta["config"]["learner_options"] == ({"l2": 0.5} if learner == "proximal" else {})
    pd.testing.assert_frame_equal(ColdStartRecommender.load(path).recommend(support, k=8),
                                  rec.recommend(support, k=8))


def test_a_format_6_model_has_no_priors_and_upgrades_to_the_current_format(tiny_data, tmp_path):
    """Format 6 knew no priors: its config lacks them and its weights hold no gate. It loads as a model without
    priors, recommends the same, and `coldstart upgrade` rewrites it in the current format."""
    rec = ColdStartRecommender(TINY.replace(epochs=1, priors="none")).fit(tiny_data)
    path = rec.save(tmp_path / "m")
    support = support_of(tiny_data, ["u1", "u9"])
    dropped = ("priors", "time_aware", "prior_l2")
    rewrite_meta(path, lambda m: {**m, "format_version": 6,
                                  "config": {k: v for k, v in m["config"].items() if k not in dropped}})
    loaded = ColdStartRecommender.load(path)
    assert loaded.state_.config.prior_channels() == () and loaded.net_.gate is None
    pd.testing.assert_frame_equal(loaded.recommend(support, k=8), rec.recommend(support, k=8))
    assert invoke("upgrade", "--model", path).exit_code == 0
    meta = json.loads((path / "model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["config"]["priors"] == "none"


@pytest.mark.parametrize("name", ["adapt", "user_bias_scale"])
def test_a_format_5_model_with_a_setting_that_is_gone_is_refused_naming_it(fitted, tmp_path, name):
    old = {"adapt": "last"} if name == "adapt" else {name: fitted.config.objective != "implicit"}
    path = fitted.save(tmp_path / "m")
    rewrite_meta(path, lambda m: as_format_5(m, **old))
    with pytest.raises(ModelFormatError, match=f"fitted with {next(iter(old))} = .*no longer has.*re-fit"):
        ColdStartRecommender.load(path)


def test_save_refuses_to_overwrite_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFormatError, match="refusing"):
        fitted.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_check_target_refuses_unusable_paths(tmp_path):
    (tmp_path / "file.csv").write_text("x")
    with pytest.raises(ModelFormatError, match="is a file and not a folder"):
        check_target(tmp_path / "file.csv" / "sub" / "model")
    with pytest.raises(ModelFormatError, match="exists and is not a folder"):
        check_target(tmp_path / "file.csv")
    check_target(tmp_path / "new" / "deeper" / "model")  # creatable: fine
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_and_model_folders_follow_the_umask(fitted, tmp_path, mask):
    old = os.umask(mask)
    try:
        path = fitted.save(tmp_path / "m")
        out = atomic_file(tmp_path / "out.csv", lambda tmp: Path(tmp).write_text("a\n"))
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(path) == 0o777 & ~mask
    assert {mode(p) for p in path.iterdir()} == {0o666 & ~mask}
    assert mode(out) == 0o666 & ~mask


SAVER = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from coldstart import ColdStartRecommender
    models = [ColdStartRecommender.load(p) for p in sys.argv[2:4]]
    print("ready", flush=True)
    end, i = time.monotonic() + float(sys.argv[4]), 0
    while time.monotonic() < end:
        models[i % 2].save(sys.argv[1])
        time.sleep(0.005)
        i += 1
    print(i)
""")
LOADER = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from coldstart import ColdStartRecommender, ModelFormatError
    seen, failed = set(), 0
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        try:
            seen.add(ColdStartRecommender.load(sys.argv[1]).config.seed)
        except ModelFormatError as exc:
            failed += 1
            print(exc, file=sys.stderr)
    print(sorted(seen), failed)
""")


def python(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_loads_during_repeated_saves_in_other_processes_always_get_a_whole_model(tiny_data, tmp_path):
    """Two processes save two different models (seeds 1 and 2) to one path in turn while a third loads it: every
    load gets one of the two models, whole; the saves themselves never fail."""
    a = ColdStartRecommender(TINY.replace(seed=1, epochs=1)).fit(tiny_data).save(tmp_path / "a")
    b = ColdStartRecommender(TINY.replace(seed=2, epochs=1)).fit(tiny_data).save(tmp_path / "b")
    target = tmp_path / "served"
    ColdStartRecommender.load(a).save(target)
    savers = [python(SAVER, target, a, b, 4), python(SAVER, target, b, a, 4)]
    loader = python(LOADER, target, 4)
    out, err = loader.communicate(timeout=300)
    for saver in savers:
        saver_out, saver_err = saver.communicate(timeout=300)
        assert saver.returncode == 0 and int(saver_out.split()[-1]) > 10, saver_err
    assert loader.returncode == 0, err
    seen, failed = out.split("\n", 1)[1].rsplit("]", 1)
    assert failed.strip() == "0", err
    assert set(json.loads(seen + "]")) <= {1, 2}
    assert ColdStartRecommender.load(target).config.seed in {1, 2}
    assert sorted(p.name for p in target.iterdir())[0] == "model.json" and not list(target.glob(".*"))


WRITER = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from coldstart.cli.render import write as _write
    df = pd.DataFrame({"user_id": [sys.argv[2]] * 2000, "item_id": range(2000)})
    print("ready", flush=True)
    end, n = time.monotonic() + float(sys.argv[3]), 0
    while time.monotonic() < end:
        _write(df, __import__("pathlib").Path(sys.argv[1]), None)
        n += 1
    print(n)
""")


def test_two_processes_writing_one_output_never_leave_a_mixed_or_partial_file(tmp_path):
    """Each writer rewrites the whole file again and again; every read in between is one writer's whole file."""
    out = tmp_path / "recs.csv"
    writers = [python(WRITER, out, name, 3) for name in ("a", "b")]
    for w in writers:
        assert w.stdout.readline().strip() == "ready"
    expected = {name: pd.DataFrame({"user_id": [name] * 2000, "item_id": range(2000)}).to_csv(index=False)
                for name in ("a", "b")}
    seen = set()
    while any(w.poll() is None for w in writers):
        if out.exists():
            text = out.read_text()
            assert text in expected.values(), f"a read of {len(text)} characters matched neither writer"
            seen.add(text[8:20])
    for w in writers:
        rest, err = w.communicate(timeout=60)
        assert w.returncode == 0 and int(rest) > 5, err
    assert out.read_text() in expected.values() and not list(tmp_path.glob(".*"))
