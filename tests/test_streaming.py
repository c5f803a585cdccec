"""Streaming recommend: chunked input and output give exactly what one batched call gives, a user's rows must be
together, and a failure leaves no output file."""
from __future__ import annotations

import io
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from coldstart.cli import app
from coldstart.cli.progress import ChunkProgress
from coldstart.errors import DataError
from coldstart.io import load_ratings
from coldstart.streaming import Progress, stream_recommend, user_chunks
from tests.conftest import support_of

USERS = [f"u{u}" for u in range(0, 60, 2)]


@pytest.fixture(scope="module")
def support(tiny_data):
    return support_of(tiny_data, USERS, n=5).reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_streamed_recommendations_equal_one_batched_call(fitted, support, tmp_path, suffix, chunk_rows):
    source = tmp_path / f"support{suffix}"
    support.to_parquet(source) if suffix == ".parquet" else support.to_csv(source, index=False)
    out = tmp_path / f"recs{suffix}"
    done = stream_recommend(fitted, source, out, k=6, chunk_rows=chunk_rows)
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    expected = fitted.recommend(support, k=6)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert done.users == len(USERS) and done.rows == len(support)


def test_chunks_hold_whole_users_and_a_scattered_user_is_refused(support, tmp_path):
    source = tmp_path / "s.parquet"
    support.to_parquet(source)
    chunks = list(user_chunks(source, chunk_rows=7))
    assert len(chunks) > 3
    seen = [set(c["user_id"]) for c in chunks]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # no user split across chunks
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True)[["user_id", "item_id"]],
                                  support[["user_id", "item_id"]], check_dtype=False)
    scattered = pd.concat([support, support.head(1)], ignore_index=True)  # u0 again at the end
    scattered.to_parquet(source)
    with pytest.raises(DataError, match="user 'u0' appears again after other users"):
        list(user_chunks(source, chunk_rows=7))


def test_cli_streams_and_leaves_nothing_on_failure(fitted, support, tmp_path):
    model = fitted.save(tmp_path / "m")
    source, out = tmp_path / "s.parquet", tmp_path / "recs.parquet"
    support.to_parquet(source)
    result = CliRunner().invoke(app, ["recommend", "--model", str(model), "--ratings", str(source), "--output",
                                      str(out), "-k", "4"])
    assert result.exit_code == 0, result.output
    assert "scored " in result.stderr and f"wrote {out}: {len(USERS)} users" in result.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out), fitted.recommend(support, k=4), check_dtype=False)
    bad = support.assign(rating=support["rating"].astype(str))
    bad.loc[len(bad) - 1, "rating"] = "five"
    bad.to_parquet(source)
    out.unlink()
    result = CliRunner().invoke(app, ["recommend", "--model", str(model), "--ratings", str(source), "--output",
                                      str(out)])
    assert result.exit_code == 1 and "expected a finite number, found 'five'" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".recs*"))


def test_on_a_terminal_the_progress_bar_counts_the_rows_of_the_parquet_footer(support, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    source = tmp_path / "s.parquet"
    support.to_parquet(source)
    monkeypatch.setattr(sys, "stderr", Terminal())
    with ChunkProgress(False, source) as on_chunk:
        on_chunk(Progress(users=3, rows=15, seconds=1.0))
    shown = sys.stderr.getvalue()
    assert f"15 of {len(support)} rows" in shown and "3 users" in shown


def test_a_streamed_csv_row_wider_than_the_header_names_its_line(tmp_path):
    """As the whole-file reader does: not a silent shift of the columns into a missing rating."""
    source = tmp_path / "s.csv"
    for text, expected in (("u1,i1,5,\nu1,i2,4\n", r"s\.csv, line 2: expected 3 fields, as in the header, found more"),
                           ("u1,i1,5\nu1,i2,4\nu2,i3,3,\n", r"s\.csv: .*Expected 3 fields in line 4, saw 4")):
        source.write_text("user_id,item_id,rating\n" + text)
        with pytest.raises(DataError, match=expected):
            load_ratings(source)
        for rows in (1, 2, 1000):
            with pytest.raises(DataError, match=expected):
                list(user_chunks(source, chunk_rows=rows))
