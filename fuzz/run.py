"""Run fuzz targets under atheris, each in its own process, and write a summary table.

    .venv/bin/python fuzz/run.py --inputs 100000 --target all
    .venv/bin/python fuzz/run.py --inputs 5000 --target ciphertext --seconds 60

Per target: the seeds are rebuilt (``fuzz/corpus.py``), libFuzzer runs with the token
dictionary ``fuzz/tokens.dict``, ``-atheris_runs=N`` (the seeds count as runs),
``-timeout`` (a hang is one input running longer) and ``-rss_limit_mb`` (a runaway
allocation ends the run); it stops a target at its first crash. From its
output the summary takes the inputs executed, exec/s, the peak RSS right after the
seeds were loaded and at the end (equal within noise: memory flat), and counts the
crash / timeout / OOM artifacts. The exit status is 1 if any target crashed, hung,
ran out of memory or stopped short of its inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the fuzz package importable
    sys.path.insert(0, str(ROOT))

from fuzz.corpus import DEFAULT_VECTORS, write_corpus  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

__all__ = ["TargetResult", "main", "run_target"]

_STATUS = re.compile(r"^#(\d+)\s+(\w+)\b.*?\brss: (\d+)Mb")
_DONE = re.compile(r"^Done (\d+) (?:runs )?in (\d+) second")
DICTIONARY = ROOT / "fuzz" / "tokens.dict"
# The peak RSS may grow this much after the seeds are in before memory counts as not flat
# (libFuzzer keeps the inputs it finds interesting in memory too).
_FLAT_MB = 16


@dataclass
class TargetResult:
    """What one target's run did."""

    target: str
    requested: int
    executed: int = 0
    seconds: float = 0.0
    exec_per_s: float = 0.0
    crashes: int = 0
    hangs: int = 0
    ooms: int = 0
    rss_start_mb: int = 0
    rss_end_mb: int = 0
    corpus_files: int = 0
    exit_code: int = 0
    failure: str = ""
    artifacts: list[str] = field(default_factory=list)

    @property
    def memory_flat(self) -> bool:
        return self.rss_end_mb - self.rss_start_mb <= _FLAT_MB

    @property
    def ok(self) -> bool:
        stopped_early = self.executed < self.requested and not self.failure.startswith("time limit")
        return not (self.crashes or self.hangs or self.ooms or self.exit_code or stopped_early)


def run_target(target: str, inputs: int, workdir: Path, *, seconds: float | None = None, timeout: int = 10,
               rss_limit_mb: int = 1024, max_len: int = 4096, vectors: Path = DEFAULT_VECTORS,
               echo: bool = False) -> TargetResult:
    """Fuzz ``target`` for ``inputs`` runs (or ``seconds``, whichever ends first) in a subprocess."""
    base = workdir / target
    seeds, corpus, artifacts = base / "seeds", base / "corpus", base / "artifacts"
    for directory in (corpus, artifacts):
        directory.mkdir(parents=True, exist_ok=True)
    write_corpus(target, seeds, vectors)
    before = set(os.listdir(artifacts))
    command = [sys.executable, "-m", "fuzz.harness", target, f"-atheris_runs={inputs}", f"-timeout={timeout}",
               f"-rss_limit_mb={rss_limit_mb}", f"-max_len={max_len}", f"-artifact_prefix={artifacts}/",
               f"-dict={DICTIONARY}", "-print_final_stats=1"]
    if seconds is not None:
        command.append(f"-max_total_time={int(seconds)}")
    command += [str(corpus), str(seeds)]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = TargetResult(target, inputs)
    started = inited_at = time.monotonic()
    tail: list[str] = []
    with open(base / "fuzz.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if echo:
                sys.stderr.write(line)
            tail = (tail + [line.rstrip("\n")])[-60:]
            status = _STATUS.match(line)
            if status:
                result.executed = max(result.executed, int(status.group(1)))
                rss = int(status.group(3))
                if status.group(2) == "INITED":
                    inited_at, result.rss_start_mb = time.monotonic(), rss
                result.rss_end_mb = max(result.rss_end_mb, rss)
            done = _DONE.match(line)
            if done:
                result.executed = int(done.group(1))
            if line.startswith("stat::peak_rss_mb:"):
                result.rss_end_mb = max(result.rss_end_mb, int(line.split(":")[-1]))
        result.exit_code = process.wait()
    ended = time.monotonic()
    result.seconds = round(ended - started, 1)
    fuzzing = max(ended - inited_at, 1e-3)
    result.exec_per_s = round(max(result.executed - len(os.listdir(seeds)), 0) / fuzzing)
    new = sorted(set(os.listdir(artifacts)) - before)
    result.artifacts = [str(artifacts / name) for name in new]
    result.crashes = sum(name.startswith("crash") for name in new)
    result.hangs = sum(name.startswith(("timeout", "slow-unit")) for name in new)
    result.ooms = sum(name.startswith("oom") for name in new)
    result.corpus_files = len(os.listdir(corpus))
    if result.exit_code or result.crashes or result.hangs or result.ooms:
        result.failure = "\n".join(tail)
    elif seconds is not None and result.executed < inputs:
        result.failure = f"time limit of {seconds:g} s reached after {result.executed} inputs"
    return result


def summary_table(results: list[TargetResult]) -> str:
    """The results as a Markdown table, one row per target and a total."""
    rows = ["| target | inputs | wall s | exec/s | crashes | hangs | OOMs | peak RSS after seeds MB "
            "| peak RSS at end MB | memory flat |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        rows.append(f"| {r.target} | {r.executed:,} | {r.seconds:g} | {r.exec_per_s:,} | {r.crashes} | {r.hangs} "
                    f"| {r.ooms} | {r.rss_start_mb} | {r.rss_end_mb} | {'yes' if r.memory_flat else 'NO'} |")
    total = sum(r.executed for r in results)
    rows.append(f"| **all** | **{total:,}** | {sum(r.seconds for r in results):g} | | "
                f"{sum(r.crashes for r in results)} | {sum(r.hangs for r in results)} | "
                f"{sum(r.ooms for r in results)} | | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, required=True, help="inputs per target (seeds included)")
    parser.add_argument("--target", default="all", help=f"one of {', '.join(TARGETS)}, or all (default)")
    parser.add_argument("--seconds", type=float, help="stop each target after this long, even short of --inputs")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("WXCALLBACK_FUZZ_DIR", ROOT / ".fuzz")),
                        help="corpus, artifacts, logs and summary (default .fuzz/, kept between runs)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may run before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=1024, help="memory ceiling of a target process")
    parser.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS, help="the test vector files (seeds; default tests/vectors/)")
    parser.add_argument("--echo", action="store_true", help="show libFuzzer's output while it runs")
    args = parser.parse_args(argv)
    names = list(TARGETS) if args.target == "all" else [args.target]
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; choose from {', '.join(TARGETS)} or all")
    results = []
    for name in names:
        result = run_target(name, args.inputs, args.workdir, seconds=args.seconds, timeout=args.timeout,
                            rss_limit_mb=args.rss_limit_mb, vectors=args.vectors, echo=args.echo)
        results.append(result)
        print(f"{name}: {result.executed:,} inputs, {result.exec_per_s:,}/s, crashes {result.crashes}, "
              f"hangs {result.hangs}, OOMs {result.ooms}, RSS {result.rss_start_mb} -> {result.rss_end_mb} MB",
              file=sys.stderr, flush=True)
        if result.failure:
            print(result.failure, file=sys.stderr)
    table = summary_table(results)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "summary.md").write_text(table + "\n", encoding="utf-8")
    (args.workdir / "summary.json").write_text(
        json.dumps([asdict(r) | {"memory_flat": r.memory_flat, "ok": r.ok} for r in results], indent=2) + "\n",
        encoding="utf-8")
    print(table)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
