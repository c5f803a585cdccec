"""The notebooks: git holds them clean (no outputs, no execution counts: what notebooks/build_notebooks.py
writes), and they run headless on small settings (COLDSTART_NOTEBOOK_SMALL=1) showing what they promise.

Each notebook is executed once per module by nbclient, in a python3 kernel started in notebooks/ with the
repo first on PYTHONPATH (so the kernel imports the checkout under test); the tests then read the outputs of
the cells that carry a tag (`metadata.tags`, set in build_notebooks.py).
"""
from __future__ import annotations

import base64
import html
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["quickstart.ipynb", "cold_start_study.ipynb"]
SMALL_ENV = "COLDSTART_NOTEBOOK_SMALL"
CELL_TIMEOUT = 300  # seconds per cell; a whole small-settings run takes well under a minute
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RATED = ["Matrix, The (1999)", "Star Wars: Episode IV - A New Hope (1977)", "Alien (1979)",
         "Toy Story (1995)", "Titanic (1997)"]  # the films the quickstart's new user rated
TITLE = re.compile(r".+ \(\d{4}\)$")  # a MovieLens title: "Name (year)"
MEAN_PM = re.compile(r"\d\.\d{3} ± \d\.\d{3}")
QUICKSTART_SYSTEMS = ["coldstart", "popularity", "popularity_liked", "popularity_recent"]  # its evaluation
NEED_DEV = "is not installed (pip install -e '.[dev]')"


# --- the stored notebooks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_no_outputs(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{name} has no code cells"
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{name}: cells {dirty} hold outputs or execution counts; git keeps notebooks clean: "
                       f"run `python notebooks/build_notebooks.py`")


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_is_what_the_build_script_writes(name):
    nbformat = pytest.importorskip("nbformat", reason=f"nbformat {NEED_DEV}")
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    expected = nbformat.writes(build.build()[name])
    assert (NOTEBOOKS / name).read_text().rstrip("\n") == expected.rstrip("\n"), (
        f"notebooks/{name} differs from what notebooks/build_notebooks.py writes: edit the cells there, then "
        f"run `python notebooks/build_notebooks.py`")


# --- executing them -----------------------------------------------------------------------------------------
def execute(path: Path):
    """The notebook at `path` run top to bottom on small settings; a cell error raises CellExecutionError."""
    nbformat = pytest.importorskip("nbformat", reason=f"nbformat {NEED_DEV}")
    nbclient = pytest.importorskip("nbclient", reason=f"nbclient {NEED_DEV}")
    pytest.importorskip("ipykernel", reason=f"ipykernel {NEED_DEV}: no python3 kernel to run notebooks in")
    env = {**os.environ, SMALL_ENV: "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("MPLBACKEND", None)  # the kernel's inline backend embeds the PNGs; Agg would show nothing
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


@pytest.fixture(scope="module")
def quickstart():
    return execute(NOTEBOOKS / "quickstart.ipynb")


@pytest.fixture(scope="module")
def study():
    return execute(NOTEBOOKS / "cold_start_study.ipynb")


def tagged(nb, tag: str) -> list[dict]:
    """The outputs of the one cell tagged `tag`."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0].outputs


def text_of(outputs: list[dict]) -> str:
    """What a cell printed and the plain text of its results, joined."""
    return "".join(o["text"] if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
                   for o in outputs)


def html_table(outputs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows of cells) of the last DataFrame a cell displays, read from its HTML."""
    pages = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert pages, "expected a DataFrame displayed as HTML"
    head, rest = pages[-1].split("<tbody>")
    body = rest.split("</tbody>")[0]
    cell = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.DOTALL)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    return ([html.unescape(c).strip() for c in cell.findall(head)],
            [[html.unescape(c).strip() for c in cell.findall(r)] for r in rows])


def column(outputs: list[dict], name: str) -> list[str]:
    """The values of column `name` of the DataFrame a cell displays (the index is a cell of every row, and
    of the header, so positions line up)."""
    header, rows = html_table(outputs)
    return [r[header.index(name)] for r in rows]


def pngs(outputs: list[dict]) -> list[bytes]:
    """The PNG images a cell displays."""
    images = [base64.b64decode(o["data"]["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
    assert all(i.startswith(PNG_MAGIC) and len(i) > 5000 for i in images), "expected real PNG plots"
    return images


def no_errors(nb) -> None:
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]
    assert not errors, f"cells raised: {[e['ename'] + ': ' + e['evalue'] for e in errors]}"


# --- quickstart.ipynb ---------------------------------------------------------------------------------------
def test_quickstart_recommends_ten_titled_films(quickstart):
    no_errors(quickstart)
    assert "small settings" in text_of(quickstart.cells[1].outputs)  # the first code cell read the env var
    recs = tagged(quickstart, "recommendations")
    titles = column(recs, "title")
    assert column(recs, "rank") == [str(r) for r in range(1, 11)]
    assert all(TITLE.match(t) for t in titles), titles
    assert len(set(titles)) == 10 and not set(titles) & set(RATED), "rated films must not be recommended"
    scores = [float(s) for s in column(recs, "score")]
    assert scores == sorted(scores, reverse=True)


def test_quickstart_interviews_a_newcomer(quickstart):
    first = tagged(quickstart, "interview-first")
    titles = column(first, "title")
    assert len(titles) == 10 and len(set(titles)) == 10 and all(TITLE.match(t) for t in titles), titles
    assert set(column(first, "user_id")) == {"new-user"}
    assert column(first, "rank") == [str(r) for r in range(1, 11)]
    answered = set(titles[:5])  # the notebook answers the first five questions
    follow_up = column(tagged(quickstart, "interview-next"), "title")
    assert len(follow_up) == 5 and not set(follow_up) & answered, "an answered film was asked again"
    after = column(tagged(quickstart, "interview-recommend"), "title")
    assert len(after) == 10 and not set(after) & answered, "a film asked about was recommended"
    mine = tagged(quickstart, "interview-me")
    assert set(column(mine, "user_id")) == {"me"}
    assert len(column(mine, "title")) == 5 and not set(column(mine, "title")) & set(RATED)


def test_quickstart_evaluates_and_plots(quickstart):
    table = text_of(tagged(quickstart, "evaluation"))
    for expected in ("== 1 shot", "== 3 shots", "== 5 shots", "== 10 shots", "ndcg@10", "recall@10",
                     "coldstart minus each system"):
        assert expected in table
    for block in table.split("== ")[1:5]:  # one table per number of shots, a row per system
        for system in QUICKSTART_SYSTEMS:
            assert re.search(rf"^{system}\s+\d\.\d{{4}}", block, re.MULTILINE), (system, block)
    header, rows = html_table(tagged(quickstart, "paired"))
    assert {"1 shot", "3 shots", "5 shots", "10 shots"} <= set(header)
    assert [r[0] for r in rows] == QUICKSTART_SYSTEMS[1:]  # coldstart minus each baseline
    verdict = re.compile(r"[+-]\d\.\d{3} ± \d\.\d{3} (ahead|behind|level)")
    assert all(verdict.fullmatch(c) for r in rows for c in r[1:])
    assert len(pngs(tagged(quickstart, "plot"))) == 1


# --- cold_start_study.ipynb ---------------------------------------------------------------------------------
def test_study_learner_curves_with_intervals(study):
    no_errors(study)
    header, rows = html_table(tagged(study, "seed-table"))
    systems = [r[0] for r in rows]
    learners = {"coldstart", "coldstart:fomaml", "coldstart:reptile"}
    assert learners | {"popularity", "ease", "network"} <= set(systems)
    assert {"1", "3", "5", "10"} <= set(header)
    assert all(MEAN_PM.fullmatch(c) for r in rows for c in r[1:])
    assert len(pngs(tagged(study, "plot-learners"))) == 1
    paired = tagged(study, "plot-paired")
    assert len(pngs(paired)) == 1
    _, verdicts = html_table(paired)
    assert [r[0] for r in verdicts] == systems[1:]  # coldstart minus every other system
    assert {c for r in verdicts for c in r[1:]} <= {"ahead", "behind", "level"}


def test_study_interview_strategies(study):
    header, rows = html_table(tagged(study, "interview-table"))
    assert [r[0] for r in rows] == ["coldstart", "popular", "liked", "random"]
    assert {"ndcg@10", "answered"} <= set(header)
    cells = [c for r in rows for c in r[1:]]
    assert len(cells) == 4 * 2 * 2  # nDCG@10 and answered, after 1 and 3 questions (small settings)
    assert all(MEAN_PM.fullmatch(c) for c in cells)
    assert len(pngs(tagged(study, "plot-interview"))) == 1
    paired = tagged(study, "plot-interview-paired")
    assert len(pngs(paired)) == 1
    header, verdicts = html_table(paired)
    assert [r[0] for r in verdicts] == ["popular", "liked", "random"]
    assert {"1 question", "3 questions"} <= set(header)
    assert {c for r in verdicts for c in r[1:]} <= {"ahead", "behind", "level"}
