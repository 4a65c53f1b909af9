"""Runs the benchmark scripts in turn and prints their tables, or writes them as one page.

    python bench/run_all.py                                  # every script, full sizes (about 20 minutes, and bench/labels.py: 15-35 more)
    python bench/run_all.py --write docs/benchmarks.md       # ... and rewrite the page (`make bench`)
    python bench/run_all.py --quick --only startup.py        # tiny sizes, one script (the tests do this)

The page starts with a header naming the machine (the CPU's model name and its bf16/AVX flags from
/proc/cpuinfo, cores, memory), the versions, the date, the git commit and the command that wrote
it; then each script's command and its table, as the script printed it. With --quick the sizes are
tiny and the header says so: such a page shows that the writer works, not how fast the machine is.
Pass TORCH_PYTHON=/path/to/python in the environment to add the PyTorch twin to train_speed.py.
Scripts that need a trained run (eval_windows, finetune_gain, names_quality,
score_speed, serve_load) or a GPU (gpu_check) are not run here; each says how to run it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")  # the flags that decide charrnn's kernels

# scripts this page does not run, and why
NOT_RUN = (("eval_windows.py", "needs trained runs: python bench/eval_windows.py RUN..."),
           ("finetune_gain.py", "needs a parent run: python bench/finetune_gain.py --parent RUN"),
           ("names_quality.py", "10-minute trainings on names, one per configuration"),
           ("score_speed.py", "needs a trained run: python bench/score_speed.py RUN"),
           ("serve_load.py", "needs a trained run: python bench/serve_load.py RUN --clients 32 --length 500"),
           ("gpu_check.py", "needs an NVIDIA GPU"))

# (script, arguments at full size, arguments with --quick)
SCRIPTS = (
    ("startup.py", [], ["--repeats", "1", "--import-repeats", "1"]),
    ("sample_speed.py", [], ["--length", "8"]),
    ("sample_loop_variants.py", [], ["--streams", "2", "--steps", "4", "--rounds", "1"]),
    ("portable_speed.py", [], ["--length", "20", "--streams-length", "8", "--starts", "1"]),
    ("web_speed.py", [], ["--length", "50"]),
    ("train_speed.py", [], ["--rounds", "1", "--steps", "4", "--eval-every", "2", "--precision", "float32"]),
    ("step_breakdown.py", [], ["--units", "32", "--seq-length", "10", "--batch-size", "4", "--steps", "2",
                               "--rounds", "1"]),
    ("memory_scale.py", [], ["--megabytes", "1", "--steps", "2"]),
    ("copy_index.py", ["--megabytes", "100", "--queries", "30"], ["--megabytes", "1", "--queries", "2"]),
    ("quality.py", [], ["--budgets", "5"]),
    ("labels.py", [], ["--quick"]),
)


def cpu_facts(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """The CPU's model name and which of `FLAGS` it reports (None for each where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text("utf-8", errors="replace")
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": dict.fromkeys(FLAGS)}
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    return {"model": model, "flags": {flag: flag in flags for flag in FLAGS}}


def memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        return None


def versions() -> dict:
    """Python, charrnn, TensorFlow, Keras and numpy versions (None where one is not installed)."""
    found = {"python": platform.python_version()}
    try:
        from charrnn._version import __version__

        found["charrnn"] = __version__
    except ImportError:
        found["charrnn"] = None
    for name in ("tensorflow", "keras", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def run_script(name: str, arguments: list[str]) -> dict:
    """Runs one script; returns its command, output, exit code and seconds."""
    command = [sys.executable, str(HERE / name), *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    return {"name": name, "command": " ".join(["python", f"bench/{name}", *map(shlex.quote, arguments)]),
            "stdout": done.stdout.rstrip("\n"), "stderr": done.stderr, "returncode": done.returncode,
            "seconds": time.perf_counter() - started}


def header(command: str, quick: bool, when: datetime.datetime) -> str:
    """The page's first lines: what ran, where, when and how to rerun it."""
    cpu, found, memory = cpu_facts(), versions(), memory_gib()
    flags = ", ".join(f"{flag} {'yes' if present else 'no' if present is not None else '?'}"
                      for flag, present in cpu["flags"].items())
    lines = ["# Benchmarks", "",
             "Written by `bench/run_all.py`; do not edit by hand. Rerun the command below to rewrite it on "
             "another machine. The dated record of earlier measurements, and the reasons behind the "
             "defaults, is [experiments.md](experiments.md).", ""]
    if quick:
        lines += ["**Quick mode: every script ran at tiny sizes (`--quick`). The figures below show that "
                  "the scripts and this page's writer work; they are not measurements of this machine. "
                  "`make bench` writes the real page.**", ""]
    lines += ["| | |", "|---|---|",
              f"| machine | {cpu['model']}, {os.cpu_count()} cores"
              + (f", {memory:.0f} GiB" if memory else "") + f", {platform.machine()} |",
              f"| CPU flags | {flags} |",
              "| versions | " + ", ".join(f"{name} {version or 'not installed'}" for name, version in found.items()) + " |",
              f"| date | {when:%Y-%m-%d %H:%M} UTC |",
              f"| commit | {git_commit() or 'unknown'} |",
              f"| command | `{command}` |", ""]
    return "\n".join(lines)


def section(result: dict) -> str:
    status = "" if result["returncode"] == 0 else f", **failed: exit {result['returncode']}**"
    lines = [f"## {result['name']}", "", f"`{result['command']}` ({result['seconds']:.0f} s{status})", "",
             "```text", result["stdout"] or "(no output)", "```", ""]
    if result["returncode"] != 0:
        lines += ["Its last error lines:", "", "```text", *result["stderr"].strip().splitlines()[-10:], "```", ""]
    return "\n".join(lines)


def write_page(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", metavar="PATH", help="write the page (e.g. docs/benchmarks.md) as well")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the scripts, measures nothing")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="run only these scripts (e.g. startup.py)")
    args = parser.parse_args(argv)
    known = [name for name, *_ in SCRIPTS]
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        print(f"Error: no such script: {', '.join(unknown)} (choose from {', '.join(known)})", file=sys.stderr)
        return 2
    if args.write and not Path(args.write).resolve().parent.is_dir():
        print(f"Error: --write {args.write}: its folder does not exist", file=sys.stderr)
        return 2
    torch = ["--torch-python", os.environ["TORCH_PYTHON"]] if os.environ.get("TORCH_PYTHON") else []
    when = datetime.datetime.now(datetime.timezone.utc)
    command = " ".join(["python bench/run_all.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    results = []
    for name, full, quick in SCRIPTS:
        if args.only and name not in args.only:
            continue
        arguments = quick if args.quick else full
        if name == "train_speed.py":
            arguments = [*arguments, *torch]
        print(f"\n## {name}", flush=True)
        result = run_script(name, arguments)
        print(result["stdout"], flush=True)
        if result["returncode"] != 0:
            print(result["stderr"][-2000:], file=sys.stderr)
        results.append(result)
    if args.write:
        skipped = ["## Not run by this page", ""] + [f"- `bench/{name}`: {why}" for name, why in NOT_RUN] + [""]
        page = header(command, args.quick, when) + "\n" + "\n".join([*map(section, results), "\n".join(skipped)])
        write_page(Path(args.write), page)
        print(f"\nwrote {args.write}")
    failed = [result["name"] for result in results if result["returncode"] != 0]
    if failed:
        print(f"Error: {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
