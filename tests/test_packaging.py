"""A real (non-editable) wheel install: the bundled MovieLens latest-small ships inside it, so `coldstart fit`
with no RATINGS works from any folder, not only from a checkout.

The wheel is built from a copy of this working tree by a fresh venv's own pip, with build isolation: the
build backend (setuptools, as pyproject.toml's [build-system] asks) goes into a throwaway build environment
from the package index, so nothing of the interpreter running the tests (its setuptools, with or without
`wheel`) takes part. The wheel is installed alone (--no-deps) into that venv, which then reaches the
dependencies (torch, pandas, ...) of the interpreter running the tests through a .pth file listing its
site-packages folders: plain paths, so that interpreter's own .pth files (the editable install of the
checkout among them) are not run."""
from __future__ import annotations

import io
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
# Build outputs and local runs stay behind: an in-tree build/ could carry stale modules into the wheel.
TOP_LEVEL_LEFT_OUT = {".git", "build", "dist", ".pytest_cache", ".venv", ".benchmarks", "model", "runs", "eval"}
DATA_FILES = ["README.txt", "movies.csv", "ratings.csv"]


def leave_out(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in TOP_LEVEL_LEFT_OUT)}


def run(args, cwd, timeout=300, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert not check or result.returncode == 0, (f"{args} exited {result.returncode}\n{result.stdout}\n"
                                                 f"{result.stderr}")
    return result


def build_wheel(python: Path, src: Path, out: Path, cwd: Path) -> Path:
    """The wheel of `src`, built by `python`'s pip in an isolated build environment."""
    built = run([python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, src], cwd=cwd, check=False)
    if built.returncode and "No matching distribution found for setuptools" in built.stdout + built.stderr:
        pytest.skip("building the wheel needs setuptools from the package index, which is not reachable")
    assert built.returncode == 0, f"pip wheel exited {built.returncode}\n{built.stdout}\n{built.stderr}"
    (wheel,) = out.glob("coldstart_rec-*.whl")
    return wheel


def packages_of(src: Path) -> set[str]:
    """Every package of the source tree (a folder with an __init__.py), dotted."""
    return {".".join(p.parent.relative_to(src).parts) for p in (src / "coldstart").rglob("__init__.py")}


@pytest.mark.slow
def test_wheel_install_ships_the_bundled_data(tmp_path):
    if not (REPO / "data" / "ml-latest-small" / "ratings.csv").is_file():
        pytest.skip("no data/ml-latest-small in this checkout")
    src, venv, work = tmp_path / "src", tmp_path / "venv", tmp_path / "work"
    shutil.copytree(REPO, src, ignore=leave_out)
    work.mkdir()
    run([sys.executable, "-m", "venv", venv], cwd=work)  # its own pip; no system site-packages
    python, coldstart = venv / "bin" / "python", venv / "bin" / "coldstart"
    wheel = build_wheel(python, src, tmp_path / "wheels", work)

    shipped = zipfile.ZipFile(wheel).namelist()
    missing = {p for p in packages_of(src) if f"{p.replace('.', '/')}/__init__.py" not in shipped}
    assert not missing, f"subpackages left out of the wheel (pyproject.toml's packages): {sorted(missing)}"
    assert {f"coldstart/_data/ml-latest-small/{name}" for name in DATA_FILES} <= set(shipped)

    run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=work)
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       cwd=work).stdout.strip())
    (purelib / "_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    # The venv's own copy, and its data, not the checkout.
    show = ("import coldstart; from importlib.resources import files; print(coldstart.__file__); "
            "print(files('coldstart') / '_data' / 'ml-latest-small')")
    where = run([python, "-c", show], cwd=work).stdout.splitlines()
    package, bundled = Path(where[0]).resolve(), Path(where[1]).resolve()
    assert package.is_relative_to(venv.resolve()), package
    assert sorted(p.name for p in bundled.iterdir()) == DATA_FILES

    # No RATINGS, run outside any checkout: only the installed data can be found.
    run([coldstart, "fit", "--epochs", "1", "--out", venv / "model", "-q"], cwd=work)
    assert (venv / "model" / "model.json").is_file()
    out = run([coldstart, "recommend", "--model", venv / "model", "--rate", "Toy Story (1995)=5", "--k", "3",
               "--format", "csv"], cwd=work).stdout
    recs = pd.read_csv(io.StringIO(out))
    assert len(recs) == 3 and list(recs["rank"]) == [1, 2, 3], out
