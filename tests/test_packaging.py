"""A real (non-editable) wheel install: the bundled MovieLens latest-small ships inside it, so `coldstart fit`
with no RATINGS works from any folder, not only from a checkout.

The venv sees the system site-packages (torch, pandas, ... come from there; nothing is downloaded) and gets only
coldstart-rec itself, built from a copy of this working tree. The venv has no pip of its own (--without-pip):
ensurepip would put an old setuptools in it, one without bdist_wheel, that shadows the installed one; the system
pip run by the venv's python installs into the venv all the same."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
# Build outputs and local runs stay behind: an in-tree build/ could carry stale modules into the wheel.
TOP_LEVEL_LEFT_OUT = {".git", "build", "dist", ".pytest_cache", ".venv", ".benchmarks", "model", "runs", "eval"}


def leave_out(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in TOP_LEVEL_LEFT_OUT)}


def run(args, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_install_ships_the_bundled_data(tmp_path):
    if not (REPO / "data" / "ml-latest-small" / "ratings.csv").is_file():
        pytest.skip("no data/ml-latest-small in this checkout")
    src, venv, work = tmp_path / "src", tmp_path / "venv", tmp_path / "work"
    shutil.copytree(REPO, src, ignore=leave_out)
    work.mkdir()
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=work)
    python, coldstart = venv / "bin" / "python", venv / "bin" / "coldstart"
    run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", src], cwd=work)

    # The venv's own copy, not the editable install of the checkout that the system site-packages may hold.
    where = run([python, "-c", "import coldstart, coldstart.cli as c; print(coldstart.__file__); print(c._bundled())"],
                cwd=work).stdout.splitlines()
    package, bundled = Path(where[0]).resolve(), Path(where[1]).resolve()
    assert package.is_relative_to(venv.resolve()), package
    assert bundled.is_relative_to(venv.resolve()), bundled
    assert sorted(p.name for p in bundled.iterdir()) == ["README.txt", "movies.csv", "ratings.csv"]

    run([coldstart, "fit", "--epochs", "1", "--out", venv / "model", "-q"], cwd=work)
    assert (venv / "model" / "model.json").is_file()
    out = run([coldstart, "recommend", "--model", venv / "model", "--rate", "Toy Story (1995)=5", "--k", "3",
               "--format", "csv"], cwd=work).stdout
    recs = pd.read_csv(io.StringIO(out))
    assert len(recs) == 3 and list(recs["rank"]) == [1, 2, 3], out
