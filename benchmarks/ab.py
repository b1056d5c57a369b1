"""One command, timed on two revisions of digitrec's code in alternating runs, and their outputs compared.

    python benchmarks/ab.py HEAD~3 -- python -m digitrec read ../shared/data/number-strings/bank-checks/images --json -q
    python benchmarks/ab.py ca4a5f5 --rounds 5 -- python benchmarks/serve_load.py --backends onnx --workers 2 --clients 32 --seconds 15

This machine's speed drifts by 10-30% from hour to hour (other machines share its host), so two
figures taken at different times say little about a change: the runs here alternate, old then new,
`--rounds` times, and each pair is printed beside the other. `REV`'s `src/` is exported with
`git archive` into a temporary folder and put first on PYTHONPATH for its runs (so `python -m
digitrec` and every `import digitrec` in the command take it); the new runs take the working tree as
it is. Prints each run's wall time, the medians, and whether each revision's standard output was
the same bytes in every run and the same as the other's (a speed change should change nothing else).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(rev: str, into: Path) -> Path:
    """`rev`'s src/ written under `into`; the folder to put on PYTHONPATH."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run(cmd: list[str], pythonpath: Path | None) -> tuple[float, str]:
    """Wall seconds of `cmd` and a digest of its standard output (its errors shown if it fails)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + [p for p in [env.get("PYTHONPATH")] if p])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    return seconds, hashlib.sha256(done.stdout).hexdigest()[:12]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rev", help="the revision to measure against the working tree (a commit, tag or branch)")
    p.add_argument("--rounds", type=int, default=3, help="old-new pairs of runs")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # the command is everything after --
    args, cmd = p.parse_args(argv[:split]), argv[split + 1:]
    if not cmd:
        p.error("give the command to time after --")
    times: dict[str, list[float]] = {"old": [], "new": []}
    outputs: dict[str, set[str]] = {"old": set(), "new": set()}
    with tempfile.TemporaryDirectory(prefix="digitrec-ab-") as tmp:
        old_src = export(args.rev, Path(tmp))
        for r in range(args.rounds):
            for which, path in (("old", old_src), ("new", None)):
                seconds, digest = run(cmd, path)
                times[which].append(seconds)
                outputs[which].add(digest)
            print(f"round {r + 1}: old {times['old'][-1]:.2f} s  new {times['new'][-1]:.2f} s", flush=True)
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"median: old ({args.rev}) {old:.2f} s, new (working tree) {new:.2f} s: {100 * (new / old - 1):+.1f}%")
    steady = all(len(d) == 1 for d in outputs.values())
    print("output: " + ("the same bytes in every run of both" if steady and outputs["old"] == outputs["new"] else
                        "differs between the revisions" if steady else
                        "differs from run to run (timings or other changing figures in it: compare by hand)"))


if __name__ == "__main__":
    main()
