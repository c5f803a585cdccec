"""`fit --nproc N`: the same command again under torchrun, and how a training process leaves its process group."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import typer


def relaunch(nproc: int) -> int:
    """Run this same `coldstart fit` command (without --nproc) in `nproc` processes under torchrun; its exit code."""
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg == "--nproc" or arg.startswith("--nproc="):
            skip = arg == "--nproc"
            continue
        args.append(arg)
    return subprocess.call([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc_per_node={nproc}", "-m", "coldstart", *args])


def leave_process_group(after: Callable[[], None] | None = None) -> None:
    """Leave the training process group and end this process at once: torchrun workers sometimes abort in
    interpreter teardown under load (../shared/ENGINES.md); `after` runs first (rank 0's messages)."""
    import torch.distributed as dist
    code = 0
    try:
        if after is not None:
            after()
    except typer.Exit as exc:
        code = exc.exit_code
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
