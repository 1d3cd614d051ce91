"""winback and DuckDB side by side, in one sitting, on the same Parquet files.

Runs, alternated ROUNDS times (machines are noisy: compare ratios, not absolute times):
  winback, whole default pipeline (every stage, the models, outputs written; no sends)
  winback, up to rfm (--select rfm, only rfm written)
  DuckDB, the bare per-customer RFM query (scripts/duckdb_baseline.py)
  DuckDB, the same SQL stages as winback (scripts/duckdb_stages.py; no model fits)
and prints the best time and the peak RSS of each, and the ratios the aim is stated in.
Times are of the whole process (start-up included) for winback and DuckDB's own figure
for the DuckDB scripts (interpreter start-up left out, in DuckDB's favour).

Usage: bench_compare.py BIN DATA AS_OF THREADS [ROUNDS]
"""

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(cmd, env=None):
    """(seconds, peak RSS in MiB, stdout) of cmd. It runs under a fresh Python wrapper of
    its own, whose RUSAGE_CHILDREN maximum is then cmd's peak alone."""
    wrapper = (
        "import os, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
        "s = time.perf_counter() - t\n"
        "sys.stdout.write(p.stdout)\n"
        "sys.stderr.write(p.stderr)\n"
        "print(f'__wall {s:.3f}')\n"
        "print(f'__rss_kib {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n"
        "sys.exit(p.returncode)\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    out = proc.stdout
    wall = float(re.search(r"__wall ([\d.]+)", out).group(1))
    rss = int(re.search(r"__rss_kib (\d+)", out).group(1)) / 1024
    return wall, rss, out


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    binary, data, as_of, threads = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    out = Path("bench-out")
    env = dict(os.environ, WINBACK_NO_PROGRESS="1", WINBACK_LOG="warn")
    inputs = []
    for s in ["purchases", "customers", "complaints"]:
        inputs += ["--input", f"{s}={data}/{s}"]
    pipeline = str(HERE.parent / "pipelines" / "reactivation.toml")
    common = ["run", "--pipeline", pipeline, "--as-of", as_of, *inputs, "--state-dir", str(out / "state"),
              "--threads", threads, "--no-send"]
    commands = {
        "winback, whole pipeline": [binary, *common, "--output", str(out / "all")],
        "winback, up to rfm": [binary, *common, "--output", str(out / "rfm"), "--select", "rfm",
                               "--set", 'output.tables=["rfm"]'],
        "DuckDB, RFM query": [sys.executable, str(HERE / "duckdb_baseline.py"),
                              f"{data}/purchases", threads],
        "DuckDB, same stages": [sys.executable, str(HERE / "duckdb_stages.py"), data, as_of,
                                threads, str(out / "duckdb")],
    }
    best = {name: (float("inf"), 0.0) for name in commands}
    for r in range(rounds):
        for name, cmd in commands.items():
            wall, rss, text = measure(cmd, env)
            if name == "DuckDB, RFM query":
                wall = float(re.search(r"in ([\d.]+) s", text).group(1))
            elif name == "DuckDB, same stages":
                wall = float(re.search(r"^total ([\d.]+)", text, re.M).group(1))
            print(f"round {r + 1}: {name:<26} {wall:7.2f} s  peak RSS {rss:7.0f} MiB", flush=True)
            seconds, peak = best[name]
            best[name] = (min(seconds, wall), max(peak, rss))
    print()
    print(f"| run ({threads} threads, best of {rounds}) | seconds | peak RSS (MiB) |")
    print("|---|---:|---:|")
    for name, (seconds, rss) in best.items():
        print(f"| {name} | {seconds:.2f} | {rss:.0f} |")
    whole = best["winback, whole pipeline"][0]
    print()
    print(f"whole pipeline / DuckDB RFM query:   {whole / best['DuckDB, RFM query'][0]:.2f}x (aim <= 1.5x)")
    print(f"whole pipeline / DuckDB same stages: {whole / best['DuckDB, same stages'][0]:.2f}x (aim <= 1.0x)")
    print(f"up to rfm / DuckDB RFM query:        {best['winback, up to rfm'][0] / best['DuckDB, RFM query'][0]:.2f}x")


if __name__ == "__main__":
    main()
