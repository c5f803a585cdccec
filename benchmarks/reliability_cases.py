"""Reliability cases, before and after: what each command did on two source trees, as one Markdown table.

Every case runs `python -m coldstart ...` as a subprocess with PYTHONPATH=<tree> and OMP_NUM_THREADS=1, in a fresh
temporary folder (never in a repository). Each tree fits its own tiny model first (the model directory format
differs between versions) and the cases reuse it. A cell shows the exit code and the first line of stderr (the
error, warning or exception), or what was observed (outputs compared, files' modes, times, counts).

    git worktree add /tmp/before 50ddf6d && git worktree add /tmp/after b3556d0
    OMP_NUM_THREADS=1 python benchmarks/reliability_cases.py --before /tmp/before --after /tmp/after

`--only 1,17` runs some cases; `--keep` keeps the temporary folder. About 4-5 minutes on two CPU cores. Case 17
(saves racing loads) is timing-dependent: its counts vary from run to run (on 50ddf6d, 0 to 158 failed loads
and 1 to 5 mixed loads out of 200 in four runs).

Only the standard library is imported here; the trees' own Python environment (torch, pandas...) is the one
running this script (`sys.executable`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CELL = 110  # characters per table cell (about)
TIMEOUT = 180  # seconds per command unless a case says otherwise
CONFIG = "embedding_dim = 8\nhidden = [16, 8]\nn_negatives = 64\n"
EPOCHS = "2"
SYNTHETIC = """
import sys
from coldstart import make_synthetic
d = make_synthetic(n_users=60, n_items=40, seed=0)
r = d.ratings[["user_id", "item_id", "rating"]].copy()
r.to_csv("ratings.csv", index=False)
# the same ratings with integer ids (u7 -> 8, i7 -> 8) for the float-id case
r.assign(user_id=r.user_id.str[1:].astype(int) + 1, item_id=r.item_id.str[1:].astype(int) + 1).to_csv(
    "ratings_int.csv", index=False)
"""
PROBE = "recommend -m {model} --rate i1=5 --rate i2=4 -k 5 -f csv"  # the reference output

SAVER = """
import sys, time
from pathlib import Path
from coldstart import ColdStartRecommender as R
a, b, path, n = R.load(sys.argv[1]), R.load(sys.argv[2]), sys.argv[3], int(sys.argv[4])
Path("ready.saver").touch()
while not Path("go").exists():
    time.sleep(0.005)
for i in range(n):
    (a if i % 2 == 0 else b).save(path)
Path("done.saver").touch()
"""
LOADER = """
import json, sys, time
from pathlib import Path
from coldstart import ColdStartRecommender as R
path, n = sys.argv[1], int(sys.argv[2])


def signature(rec):  # (the seed model.json records, a sum of the weights): a load mixing two saves' files
    return rec.state_.config.seed, round(float(sum(v.double().sum() for v in rec.state_.net.state_dict().values())), 6)


known = {signature(R.load(p)) for p in sys.argv[3:]}
mixed = 0
Path("ready.loader").touch()
while not Path("go").exists():
    time.sleep(0.005)
failed, overlapped, first = {}, 0, {}
for i in range(n):
    overlapped += not Path("done.saver").exists()
    try:
        mixed += signature(R.load(path)) not in known
    except Exception as exc:
        name = type(exc).__name__
        failed[name] = failed.get(name, 0) + 1
        first.setdefault(name, str(exc).splitlines()[0] if str(exc) else "")
print(json.dumps({"failed": failed, "first": first, "overlapped": overlapped, "mixed": mixed}))
"""


@dataclass
class Result:
    rc: int | None  # None: timed out
    out: str
    err: str
    wall: float


ROOT: list[str] = []  # the temporary folder of this run, left out of messages


def short(text: str, limit: int = CELL) -> str:
    text = " ".join(text.split())
    for root in ROOT:  # '/tmp/coldstart-reliability-x/after/c29.abc/nodir/out.csv' -> 'nodir/out.csv'
        text = re.sub(re.escape(root) + r"/(before|after)/(c\d+\.[^/' ]+/)?", "", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def key_line(err: str, skip: tuple[str, ...] = ()) -> str:
    """The informative line of stderr: a traceback's exception, else the first error/warning, else the first."""
    lines = [ln.strip(" │╭╰╮╯─\t") for ln in err.splitlines()]
    lines = [ln for ln in lines if ln and ln != "Error" and not ln.startswith(("Usage:", "Try '", *skip))]
    if not lines:
        return "(no stderr)"
    if any(ln.startswith("Traceback") for ln in lines):
        return "traceback: " + lines[-1]
    for ln in lines:
        if ln.lower().startswith(("error", "warning", "no such option", "invalid value", "missing")):
            return ln
    return lines[0]


def csv_rows(out: str) -> list[list[str]]:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return [ln.split(",") for ln in lines[1:]] if lines and lines[0].startswith("user_id") else []


def recs(out: str) -> str:
    """A recommend CSV on stdout, in brief: how many rows, the top items and the first score."""
    rows = csv_rows(out)
    if not rows:
        return "0 rows on stdout"
    return f"{len(rows)} rows, top {','.join(r[2] for r in rows[:3])} (score {rows[0][-1][:7]})"


def brief(r: Result, skip: tuple[str, ...] = ()) -> str:
    if r.rc is None:
        return f"timed out after {r.wall:.0f}s"
    line = short(key_line(r.err, skip))
    if r.rc == 0 and line == "(no stderr)" and skip and r.err.strip():
        return "exit 0, nothing on stderr but progress (no warning)"
    if r.rc == 0 and line == "(no stderr)":
        return f"exit 0: {recs(r.out)}" if r.out.startswith("user_id,") else "exit 0"
    if r.rc == 0 and r.out.startswith("user_id,"):
        return f"exit 0, {recs(r.out)}; stderr: {line}"
    return f"exit {r.rc}: {line}"


class Tree:
    """One source tree, its work folder, and its fitted models."""

    def __init__(self, name: str, src: Path, work: Path):
        self.name, self.src, self.work = name, src.resolve(), work
        self.work.mkdir(parents=True)
        self.env = {**os.environ, "PYTHONPATH": str(self.src), "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
                    "TERM": "dumb", "COLUMNS": "250"}
        self.reference = ""  # PROBE's stdout on the undamaged model
        self.setup_notes: list[str] = []

    def fresh(self, tag: str) -> Path:
        """A new empty folder for one case, with the shared inputs copied in."""
        d = Path(tempfile.mkdtemp(prefix=f"{tag}.", dir=self.work))
        for name in ("ratings.csv", "ratings_int.csv", "cfg.toml"):
            if (self.work / name).exists():
                shutil.copy(self.work / name, d / name)
        return d

    def model_copy(self, d: Path, source: str = "model", name: str = "model") -> Path:
        shutil.copytree(self.work / source, d / name)
        return d / name

    def run(self, args: str | list[str], cwd: Path | None = None, timeout: float = TIMEOUT,
            umask: str | None = None) -> Result:
        argv = [sys.executable, *(args.split() if isinstance(args, str) else args)]
        if umask is not None:
            argv = ["sh", "-c", f'umask {umask}; exec "$@"', "sh", *argv]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd or self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            return Result(proc.returncode, out, err, time.perf_counter() - t0)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return Result(None, out, err, time.perf_counter() - t0)

    def cs(self, args: str, cwd: Path | None = None, **kw) -> Result:
        return self.run(["-m", "coldstart", *args.split()], cwd=cwd, **kw)

    def fit(self, out: str, ratings: str = "ratings.csv", extra: str = "", cwd: Path | None = None,
            **kw) -> Result:
        return self.cs(f"fit {ratings} --out {out} --config cfg.toml --epochs {EPOCHS} {extra}", cwd=cwd, **kw)

    def setup(self) -> None:
        (self.work / "cfg.toml").write_text(CONFIG)
        r = self.run(["-c", SYNTHETIC])
        if r.rc != 0:
            raise RuntimeError(f"{self.name}: synthetic data: {key_line(r.err)}")
        for out, extra, ratings in (("model", "", "ratings.csv"), ("model2", "--seed 1", "ratings.csv"),
                                    ("model_int", "", "ratings_int.csv")):
            r = self.fit(out, ratings, extra)
            if r.rc != 0:
                self.setup_notes.append(f"fit {out}: {brief(r)}")
        self.reference = self.cs(PROBE.format(model="model")).out


# ------------------------------------------------------------------------------------------------ the cases
Case = Callable[[Tree, Tree], str]
CASES: list[tuple[str, Case]] = []


def case(title: str):
    def register(fn: Case) -> Case:
        CASES.append((title, fn))
        return fn
    return register


def rate_case(value: str) -> Case:
    def run(t: Tree, _: Tree) -> str:
        return brief(t.cs(f"recommend -m model --rate {value} -k 5 -f csv"))
    return run


for _n, _v in ((1, "i1=inf"), (2, "i1=nan"), (3, "i1=1e30")):
    case(f"{_n}. `recommend --rate {_v}`")(rate_case(_v))


@case("4. `recommend --ratings support.csv`, one support rating 500 (1-5 model)")
def c4(t: Tree, _: Tree) -> str:
    d = t.fresh("c4")
    (d / "support.csv").write_text("user_id,item_id,rating\nn1,i1,5\nn1,i2,500\nn1,i3,4\n")
    return brief(t.cs(f"recommend -m {t.work / 'model'} --ratings support.csv -k 5 -f csv", cwd=d))


@case("5. `fit` on 1,583 1-5 ratings with two rows rated 100 and -3")
def c5(t: Tree, _: Tree) -> str:
    d = t.fresh("c5")
    lines = (d / "ratings.csv").read_text().splitlines()
    for row, value in ((10, "100.0"), (20, "-3.0")):
        lines[row] = ",".join(lines[row].split(",")[:2] + [value])
    (d / "ratings.csv").write_text("\n".join(lines) + "\n")
    r = t.fit("m", cwd=d)
    return brief(r, skip=("fitting on", "epoch ", "saved "))


@case("6. `recommend --rate i1` (no `=`)")
def c6(t: Tree, _: Tree) -> str:
    return brief(t.cs("recommend -m model --rate i1 -k 5 -f csv"))


@case("7. `recommend --rate nosuchitem=5` (model has ids only, no titles)")
def c7(t: Tree, _: Tree) -> str:
    return brief(t.cs("recommend -m model --rate nosuchitem=5 -k 5 -f csv"))


@case("8. `fit --out file.csv/sub --epochs 30`, file.csv a file (time, trained first?)")
def c8(t: Tree, _: Tree) -> str:
    d = t.fresh("c8")
    (d / "file.csv").write_text("not a folder\n")
    r = t.cs("fit ratings.csv --out file.csv/sub --config cfg.toml --epochs 30", cwd=d)
    trained = "trained first" if "fitting on" in r.err else "no training"
    return f"{r.wall:.1f}s, {trained}; {brief(r, skip=('fitting on', 'epoch '))}"


@case("9. `info` on a model whose model.json is `[]`")
def c9(t: Tree, _: Tree) -> str:
    d = t.fresh("c9")
    (t.model_copy(d) / "model.json").write_text("[]")
    return brief(t.cs("info -m model", cwd=d))


@case('10. `recommend` on a model whose model.json lacks "items"')
def c10(t: Tree, _: Tree) -> str:
    d = t.fresh("c10")
    meta_file = t.model_copy(d) / "model.json"
    meta = json.loads(meta_file.read_text())
    del meta["items"]
    meta_file.write_text(json.dumps(meta, indent=1))
    return brief(t.cs("recommend -m model --rate i1=5 -k 5 -f csv", cwd=d))


def weights_file(model: Path) -> Path:
    """The network's file: model.json's `files.weights.name` (format 5), else weights.safetensors."""
    try:
        return model / json.loads((model / "model.json").read_text())["files"]["weights"]["name"]
    except (KeyError, TypeError, ValueError):
        return model / "weights.safetensors"


def compared(t: Tree, r: Result) -> str:
    if r.rc == 0 and csv_rows(r.out):
        same = "SAME as" if r.out == t.reference else "DIFFERENT from"
        return f"exit 0, output {same} undamaged ({recs(r.out)}; undamaged {recs(t.reference)})"
    return brief(r)


@case("11. `recommend --rate i1=5 --rate i2=4` after flipping one byte (0xFF xor, the high byte of a float "
      "in the middle of the largest network tensor) of weights.safetensors")
def c11(t: Tree, _: Tree) -> str:
    d = t.fresh("c11")
    f = weights_file(t.model_copy(d))
    data = bytearray(f.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    name, entry = max(((k, v) for k, v in header.items() if k.startswith("net.")),
                      key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0])
    lo, hi = entry["data_offsets"]
    at = 8 + n + lo + ((hi - lo) // 2 // 4) * 4 + 3
    data[at] ^= 0xFF
    f.write_bytes(bytes(data))
    return compared(t, t.cs(PROBE.format(model="model"), cwd=d)) + f" [byte {at} of {len(data)}, {name}]"


@case("12. `recommend` with weights.safetensors truncated by 100 bytes")
def c12(t: Tree, _: Tree) -> str:
    d = t.fresh("c12")
    f = weights_file(t.model_copy(d))
    f.write_bytes(f.read_bytes()[:-100])
    return compared(t, t.cs(PROBE.format(model="model"), cwd=d))


@case("13. wall time of `coldstart --help` (median of 3); torch in sys.modules after `import coldstart.cli`")
def c13(t: Tree, _: Tree) -> str:
    t.cs("--help")  # warm the caches (bytecode, page cache)
    runs = [t.cs("--help") for _ in range(3)]
    bad = [r for r in runs if r.rc != 0]
    probe = t.run(["-c", "import sys, coldstart.cli; print('torch' in sys.modules)"])
    torch = probe.out.strip() if probe.rc == 0 else brief(probe)
    median = statistics.median(r.wall for r in runs)
    return f"{median:.2f}s{' (exit ' + str(bad[0].rc) + ')' if bad else ''}; torch imported: {torch}"


@case("14. `fit` on a CSV with a trailing separator on data rows (`u0,i26,4.0,`)")
def c14(t: Tree, _: Tree) -> str:
    d = t.fresh("c14")
    lines = (d / "ratings.csv").read_text().splitlines()
    (d / "trailing.csv").write_text("\n".join([lines[0], *(ln + "," for ln in lines[1:])]) + "\n")
    r = t.fit("m", "trailing.csv", cwd=d)
    head = r.err.splitlines()[0] if r.rc == 0 and r.err else ""
    return brief(r, skip=("epoch ", "saved ", "fitting on")) + (f" ({short(head, 60)})" if head else "")


@case("15. support CSV with float ids (`1.0`) on a model trained on integer ids (`1`)")
def c15(t: Tree, _: Tree) -> str:
    d = t.fresh("c15")
    (d / "int.csv").write_text("user_id,item_id,rating\n900,1,5\n900,2,4\n900,3,2\n")
    (d / "float.csv").write_text("user_id,item_id,rating\n900.0,1.0,5.0\n900.0,2.0,4.0\n900.0,3.0,2.0\n")
    model = t.work / "model_int"
    ref = t.cs(f"recommend -m {model} --ratings int.csv -k 5 -f csv", cwd=d)
    r = t.cs(f"recommend -m {model} --ratings float.csv -k 5 -f csv", cwd=d)
    if r.rc == 0 and csv_rows(r.out):
        same = "SAME as" if r.out == ref.out else "DIFFERENT from"
        line = key_line(r.err)
        warn = "" if line == "(no stderr)" else f"; stderr: {line}"
        return f"exit 0, output {same} integer ids ({recs(r.out)}){warn}"
    return brief(r)


def mode(p: Path) -> str:
    return oct(p.stat().st_mode & 0o777)[2:]


@case("16. file modes under umask 022: `recommend --output out.csv`, `fit --out m` (folder, files)")
def c16(t: Tree, _: Tree) -> str:
    d = t.fresh("c16")
    r1 = t.cs(f"recommend -m {t.work / 'model'} --rate i1=5 -k 5 --output out.csv", cwd=d, umask="022")
    r2 = t.fit("m", cwd=d, umask="022")
    parts = [f"out.csv {mode(d / 'out.csv')}" if (d / "out.csv").exists() else f"out.csv: {brief(r1)}"]
    if (d / "m").is_dir():
        files = ", ".join(f"{f.name} {mode(f)}" for f in sorted((d / "m").iterdir()))
        parts.append(f"m/ {mode(d / 'm')}: {files}")
    else:
        parts.append(f"fit: {brief(r2)}")
    return ", ".join(parts)


@case("17. 100 saves (two models alternating) to one path while another process loads it 200 times "
      "(failed loads; loads whose config and weights came from different saves)")
def c17(t: Tree, _: Tree) -> str:
    d = t.fresh("c17")
    t.model_copy(d, name="shared")
    (d / "saver.py").write_text(SAVER)
    (d / "loader.py").write_text(LOADER)
    procs = []
    for argv in (["saver.py", str(t.work / "model"), str(t.work / "model2"), "shared", "100"],
                 ["loader.py", "shared", "200", str(t.work / "model"), str(t.work / "model2")]):
        procs.append(subprocess.Popen([sys.executable, *argv], cwd=d, env=t.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True))
    try:
        deadline = time.monotonic() + 120
        while not ((d / "ready.saver").exists() and (d / "ready.loader").exists()):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        (d / "go").touch()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
    (_, s_err), (l_out, l_err) = outs
    if procs[0].returncode != 0:
        saver = f"saver exit {procs[0].returncode}: {key_line(s_err)}; "
    else:
        saver = ""
    if procs[1].returncode != 0:
        return saver + f"loader exit {procs[1].returncode}: {key_line(l_err)}"
    res = json.loads(l_out.strip().splitlines()[-1])
    failed = sum(res["failed"].values())
    what = "; ".join(f"{k} x{v}: {res['first'][k]}" for k, v in res["failed"].items())
    return (saver + f"{failed}/200 loads failed, {res['mixed']} mixed two saves' files ({res['overlapped']} loads "
            f"during the saves)" + (f"; {what}" if what else ""))


KILL_AFTER = 2.0  # seconds after the "fitting on" line: about 1 s of set-up, then about 1 s of epochs


@case("18. `fit --epochs 300` SIGKILLed ~1 s into training (2 s after its 'fitting on' line) over an earlier model at --out; then `fit --resume`")
def c18(t: Tree, _: Tree) -> str:
    d = t.fresh("c18")
    t.model_copy(d, name="out")
    args = [sys.executable, "-m", "coldstart", "fit", "ratings.csv", "--out", "out", "--config", "cfg.toml",
            "--epochs", "300"]
    with open(d / "fit.err", "w") as err:
        p = subprocess.Popen(args, cwd=d, env=t.env, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
        deadline = time.monotonic() + 60
        while "fitting on" not in (d / "fit.err").read_text() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(KILL_AFTER)
        finished = p.poll() is not None
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    killed_at = [ln for ln in (d / "fit.err").read_text().splitlines() if ln.startswith("epoch ")]
    probe = t.cs(PROBE.format(model="out"), cwd=d)
    if probe.rc == 0 and probe.out == t.reference:
        intact = "old model intact (same recs)"
    else:
        intact = f"old model NOT intact: {brief(probe)}"
    left = sorted(p.name for p in d.iterdir()
                  if p.name not in {"out", "ratings.csv", "ratings_int.csv", "cfg.toml", "fit.err"})
    r = t.cs("fit ratings.csv --out out --config cfg.toml --epochs 300 --resume", cwd=d, timeout=300)
    resumed = re.search(r"resuming from .* after epoch (\d+) of (\d+)", r.err)
    if r.rc == 0:
        how = (f"--resume: exit 0 in {r.wall:.0f}s, stderr 'resuming from {resumed[0].split()[2]} after epoch "
               f"{resumed[1]} of {resumed[2]}'" if resumed else f"--resume: exit 0 in {r.wall:.0f}s, no resume line")
    else:
        how = f"--resume: {brief(r)}"
    return (f"{'(fit had ended before the kill) ' if finished else ''}killed"
            f"{' after ' + killed_at[-1].split(':')[0] if killed_at else ''}; {intact}; "
            f"left beside it: {', '.join(left) or 'nothing'}; {how}")


@case("19. stderr of a 5-epoch `fit` redirected (not a terminal): lines printed")
def c19(t: Tree, _: Tree) -> str:
    d = t.fresh("c19")
    r = t.cs("fit ratings.csv --out m --config cfg.toml --epochs 5", cwd=d)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    kinds: dict[str, int] = {}
    for ln in lines:
        kind = ln.split(":")[0].split(" done")[0] if ln.startswith("epoch ") else " ".join(ln.split()[:2])
        kind = "epoch N/5 done" if ln.startswith("epoch ") else kind
        kinds[kind] = kinds.get(kind, 0) + 1
    shown = ", ".join(f"{n} x '{k} ...'" if n > 1 else f"'{k} ...'" for k, n in kinds.items())
    return f"exit {r.rc}, {len(lines)} lines: {shown}"


@case("20. `recommend --user u0` on a model saved with `fit --no-user-history`")
def c20(t: Tree, _: Tree) -> str:
    d = t.fresh("c20")
    r = t.fit("m", extra="--no-user-history", cwd=d)
    if r.rc != 0:
        return f"fit {brief(r)}"
    return brief(t.cs("recommend -m m --user u0 -k 5 -f csv", cwd=d))


# extra cases
@case("21. `recommend` on a model directory written by the OTHER commit's code")
def c21(t: Tree, other: Tree) -> str:
    return brief(t.cs(f"recommend -m {other.work / 'model'} --rate i1=5 -k 5 -f csv"))


@case("22. `recommend --ratings` whose user rated the whole catalogue (exclude-seen leaves nothing)")
def c22(t: Tree, _: Tree) -> str:
    d = t.fresh("c22")
    rows = [f"n1,i{i},{1 + i % 5}" for i in range(40)]
    (d / "support.csv").write_text("user_id,item_id,rating\n" + "\n".join(rows) + "\n")
    return brief(t.cs(f"recommend -m {t.work / 'model'} --ratings support.csv -k 5 -f csv", cwd=d))


@case("23. `recommend --ratings` of a header-only support file")
def c23(t: Tree, _: Tree) -> str:
    d = t.fresh("c23")
    (d / "support.csv").write_text("user_id,item_id,rating\n")
    return brief(t.cs(f"recommend -m {t.work / 'model'} --ratings support.csv -k 5 -f csv", cwd=d))


@case("24. `recommend --rate i1=500` (out of a 1-5 scale, on the command line)")
def c24(t: Tree, _: Tree) -> str:
    return brief(t.cs("recommend -m model --rate i1=500 -k 5 -f csv"))


@case("25. `recommend` on a model folder without its weights file")
def c25(t: Tree, _: Tree) -> str:
    d = t.fresh("c25")
    weights_file(t.model_copy(d)).unlink()
    return brief(t.cs(PROBE.format(model="model"), cwd=d))


@case("26. `recommend -m` a folder that does not exist")
def c26(t: Tree, _: Tree) -> str:
    return brief(t.cs("recommend -m nosuchmodel --rate i1=5 -k 5 -f csv"))


@case("27. `fit` a ratings file with an `inf` rating")
def c27(t: Tree, _: Tree) -> str:
    d = t.fresh("c27")
    lines = (d / "ratings.csv").read_text().splitlines()
    lines[5] = ",".join(lines[5].split(",")[:2] + ["inf"])
    (d / "ratings.csv").write_text("\n".join(lines) + "\n")
    return brief(t.fit("m", cwd=d), skip=("fitting on", "epoch ", "saved "))


@case("28. `recommend --output DIR` where DIR is an existing folder")
def c28(t: Tree, _: Tree) -> str:
    d = t.fresh("c28")
    (d / "outdir").mkdir()
    r = t.cs(f"recommend -m {t.work / 'model'} --rate i1=5 -k 5 --output outdir", cwd=d)
    left = [p.name for p in d.iterdir() if p.name.startswith(".")]
    return brief(r) + (f"; left behind: {', '.join(left)}" if left else "")


@case("29. `recommend --output nodir/out.csv` (the folder does not exist)")
def c29(t: Tree, _: Tree) -> str:
    d = t.fresh("c29")
    return brief(t.cs(f"recommend -m {t.work / 'model'} --rate i1=5 -k 5 --output nodir/out.csv", cwd=d))


@case("30. `fit --out notmodel --epochs 30`, notmodel a non-empty folder that is no model (time, trained first?)")
def c30(t: Tree, _: Tree) -> str:
    d = t.fresh("c30")
    (d / "notmodel").mkdir()
    (d / "notmodel" / "keep.txt").write_text("precious\n")
    r = t.cs("fit ratings.csv --out notmodel --config cfg.toml --epochs 30", cwd=d)
    trained = "trained first" if "fitting on" in r.err else "no training"
    kept = "keep.txt kept" if (d / "notmodel" / "keep.txt").exists() else "keep.txt GONE"
    return f"{r.wall:.1f}s, {trained}, {kept}; {brief(r, skip=('fitting on', 'epoch '))}"


@case("31. `upgrade -m M` on the OTHER commit's model M, then `recommend` (same recs as the other commit's code?)")
def c31(t: Tree, other: Tree) -> str:
    d = t.fresh("c31")
    shutil.copytree(other.work / "model", d / "old")
    r = t.cs("upgrade -m old", cwd=d)
    if r.rc != 0:
        return f"upgrade {brief(r)}"
    probe = t.cs(PROBE.format(model="old"), cwd=d)
    if probe.rc == 0 and csv_rows(probe.out):
        same = "SAME as" if probe.out == other.reference else "DIFFERENT from"
        return f"upgrade exit 0; recommend output {same} the other commit's on its model ({recs(probe.out)})"
    return f"upgrade exit 0; recommend {brief(probe)}"


# ------------------------------------------------------------------------------------------------ driver
def guarded(fn: Case, t: Tree, other: Tree) -> str:
    try:
        return short(fn(t, other), 10_000)  # temporary paths left out
    except Exception as exc:  # noqa: BLE001 - a broken case is a cell, not a crash
        return f"script error: {type(exc).__name__}: {short(str(exc), 70)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="source tree of the earlier commit")
    ap.add_argument("--after", type=Path, required=True, help="source tree of the later commit")
    ap.add_argument("--only", help="comma-separated case numbers to run (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = ap.parse_args()
    for src in (args.before, args.after):
        if not (src / "coldstart" / "__init__.py").is_file():
            ap.error(f"{src}: not a source tree (no coldstart/__init__.py)")
    only = {int(x) for x in args.only.split(",")} if args.only else None
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="coldstart-reliability-"))
    ROOT.append(str(root))
    try:
        trees = [Tree("before", args.before, root / "before"), Tree("after", args.after, root / "after")]
        for t in trees:
            ts = time.perf_counter()
            try:
                t.setup()
            except Exception as exc:  # noqa: BLE001
                t.setup_notes.append(f"setup failed: {exc}")
            print(f"[{t.name}] {t.src}: setup {time.perf_counter() - ts:.1f}s"
                  f"{'; ' + '; '.join(t.setup_notes) if t.setup_notes else ''}", file=sys.stderr)
        rows = []
        for title, fn in CASES:
            number = int(title.split(".")[0])
            if only and number not in only:
                continue
            cells = []
            for t, other in (trees, trees[::-1]):
                tc = time.perf_counter()
                cells.append(guarded(fn, t, other))
                print(f"[{t.name}] case {number}: {time.perf_counter() - tc:.1f}s: {cells[-1]}", file=sys.stderr)
            rows.append((title, *cells))
        print(f"| case | before ({args.before}) | after ({args.after}) |\n|---|---|---|")
        for title, before, after in rows:
            print(f"| {cell(title)} | {cell(before)} | {cell(after)} |")
        print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
