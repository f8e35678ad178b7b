"""Cold start as Lambda runs it: from the unpacked deployment zip, nothing writable.

    python bench/cold.py [--runs 9]

The zip is built as `make package` builds it (infra/package.py from the wheelhouse
`make wheels` downloads) and unpacked twice, into read-only directories: as built
(with the runtime's bytecode, infra/bytecode.py) and with every `__pycache__` taken
out (what a zip without bytecode gives). boto3 and its dependencies are copied
beside them as Lambda's runtime provides them (compiled, as pip installs them).
Each run is a fresh `python -S` (no site-packages but those directories) with
PYTHONDONTWRITEBYTECODE=1, timed from spawn to the return of a one-event handler
call (`child.py`: import `app`, handle the payload, AWS answered below botocore).
The two trees alternate run by run, so load from other processes hits both alike;
the medians and the range are printed, then one line:

    bench: cold_start_package median_ms=N min_ms=N max_ms=N cpu_ms=N no_bytecode_median_ms=N
           no_bytecode_cpu_ms=N runs=N ref_pass_ms=N ref_botocore_ms=N ratio_to_botocore=R
           peak_rss_mb=N

Peak RSS is the child's VmHWM (its own image's high-water mark, which `exec` starts
afresh), at the handler's return; `import app` is timed by the child's own clock. CPU
is the child's user+sys time: on a shared machine the wall time waits for the core,
the CPU time much less so. Each round also spawns two references in the same way (same
interpreter, flags, environment and runtime directory): `python -S -c pass` (the
interpreter's own start) and `python -S -c "import botocore.session"` (the least any
function that calls AWS through the SDK loads), timed from spawn to exit. Their
medians, and the cold start as a multiple of the botocore one and above it, say how
fast the machine was during the run and what is the function's own share: figures from
a slow or loaded machine can be read against a quiet one's through them.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import resource
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import orjson
import workload
from stubs import SlackServer

ROOT = harness.ROOT
BENCH = Path(__file__).resolve().parent
# What Lambda's Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
RUNS = 9


def build_zip(out: Path, root: Path = ROOT) -> Path:
    """deployment.zip as `make package` builds it from the checkout `root` (offline, from
    this checkout's wheelhouse)."""
    house = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "wheels.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICE_", "PIP_"))}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    args = [sys.executable, str(root / "infra" / "package.py"), "--stage", "dev"]
    args += ["--skip-terraform", "--wheelhouse", house, "--out", str(out)]
    subprocess.run(args, cwd=root, env=env, capture_output=True, check=True)
    return out / "dev" / "cloudformation" / "deployment.zip"


def read_only(tree: Path) -> None:
    for p in [tree, *tree.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(tree: Path) -> None:
    for p in [tree, *tree.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def runtime_site(dest: Path) -> Path:
    """boto3 and its dependencies as the runtime has them, compiled."""
    dest.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, name
        src = Path(spec.origin)
        if src.name == "__init__.py":
            shutil.copytree(src.parent, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / src.name)
    compileall.compile_dir(dest, quiet=2)
    return dest


def harness_dir(dest: Path) -> Path:
    """The bench's stand-in for Lambda's runtime client (child.py and the AWS answers),
    compiled like the runtime's own code."""
    dest.mkdir()
    for name in ("child.py", "stubs.py", "ddb.py"):
        shutil.copy2(BENCH / name, dest / name)
    compileall.compile_dir(dest, quiet=2)
    return dest


def prepare(tmp: Path, compare: Path | None = None) -> dict[str, Path]:
    zipped = build_zip(tmp / "out")
    trees = {}
    if compare is not None:  # another checkout's zip, unpacked as it was built
        other = tmp / "compare"
        with zipfile.ZipFile(build_zip(tmp / "out-compare", compare)) as z:
            z.extractall(other)
        read_only(other)
        trees["compare"] = other
    for label in ("bytecode", "source"):
        task = tmp / label
        with zipfile.ZipFile(zipped) as z:
            z.extractall(task)
        if label == "source":
            for cache in sorted(task.rglob("__pycache__"), reverse=True):
                shutil.rmtree(cache)
        read_only(task)
        trees[label] = task
    trees["runtime"] = runtime_site(tmp / "runtime")
    trees["harness"] = harness_dir(tmp / "harness")
    for key in ("runtime", "harness"):
        read_only(trees[key])
    return trees


def run_once(
    trees: dict[str, Path], task: Path, rules: Path, event: Path, env: dict[str, str]
) -> tuple[float, float, dict[str, Any]]:
    child_env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(map(str, (task, trees["runtime"])))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-S",
                str(trees["harness"] / "child.py"),
                *map(str, (rules, event, out)),
            ],
            env=child_env,
            cwd=task,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode:
            raise AssertionError(f"child failed:\n{proc.stderr.decode()[-3000:]}")
        rep = orjson.loads(out.read_bytes())
    finally:
        out.unlink(missing_ok=True)
    r = rep["result"]
    assert r["received"] == 1 and r["archived"] == 1 and rep["archive_bytes"] > 0, rep
    return float((rep["t_return"] - t0) * 1000), float(rep["cpu_ms"]), rep


# The references each round spawns beside the functions (see the module docstring).
REFERENCES = {"pass": "pass", "botocore": "import botocore.session"}


def run_reference(trees: dict[str, Path], code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall ms from spawn to exit and CPU ms of `python -S -c code`, run as the functions
    are (read-only runtime directory, no bytecode written)."""
    child_env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    child_env["PYTHONPATH"] = str(trees["runtime"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-S", "-c", code],
        env=child_env,
        cwd=trees["runtime"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument(
        "--compare",
        type=Path,
        help="another checkout (e.g. a `git worktree` of main): its "
        "zip is timed in the same runs, as `before`",
    )
    args = ap.parse_args(argv)
    harness.pin_one_core()
    measure(args.runs, args.compare)
    return 0


def measure(runs: int = RUNS, compare: Path | None = None) -> float:
    """Print the detail and the bench line; returns the median ms with bytecode."""
    with SlackServer() as slack, tempfile.TemporaryDirectory(prefix="sluice-cold-") as d:
        tmp = Path(d)
        trees = prepare(tmp, compare)
        try:
            env = harness.child_env(slack.url)
            rules = tmp / "rules.json"
            rules.write_bytes(orjson.dumps(workload.rule_items()))
            event = tmp / "one.json"
            event.write_bytes(orjson.dumps(workload.event_for(workload.one_event_document())))
            labels = ["bytecode", "source"] + (["compare"] if compare else [])
            times: dict[str, list[float]] = {k: [] for k in labels}
            cpu: dict[str, list[float]] = {k: [] for k in labels}
            rss: dict[str, list[float]] = {k: [] for k in labels}
            imports: dict[str, list[float]] = {k: [] for k in labels}
            ref_times: dict[str, list[float]] = {k: [] for k in REFERENCES}
            ref_cpu: dict[str, list[float]] = {k: [] for k in REFERENCES}
            for label in times:  # untimed: the page cache warm for both
                run_once(trees, trees[label], rules, event, env)
            for code in REFERENCES.values():
                run_reference(trees, code, env)
            for _ in range(runs):
                for label in times:
                    ms, cpu_ms, rep = run_once(trees, trees[label], rules, event, env)
                    times[label].append(ms)
                    cpu[label].append(cpu_ms)
                    rss[label].append(rep["hwm_kb"] / 1024)
                    imports[label].append((rep["t_import"] - rep["t_event"]) * 1000)
                for ref, code in REFERENCES.items():
                    ms, cpu_ms = run_reference(trees, code, env)
                    ref_times[ref].append(ms)
                    ref_cpu[ref].append(cpu_ms)
        finally:
            for tree in trees.values():
                writable(tree)
    med = statistics.median
    print(
        f"\ncold start from the unpacked zip ({runs} fresh `python -S` each, alternating; "
        "read-only, PYTHONDONTWRITEBYTECODE=1; spawn -> one-event handler return, ms):"
    )
    rows = [("with the zip's bytecode", "bytecode"), ("bytecode removed", "source")]
    if compare is not None:
        rows.append((f"{compare.name} (before)", "compare"))
    series = [(label, times[key], cpu[key]) for label, key in rows]
    series += [
        (f"reference: -c {code!r}", ref_times[r], ref_cpu[r]) for r, code in REFERENCES.items()
    ]
    for label, xs, cs in series:
        print(
            f"  {label:36} wall median {med(xs):6.1f} (min {min(xs):.0f}, max {max(xs):.0f}); "
            f"CPU median {med(cs):6.1f} (min {min(cs):.0f}, max {max(cs):.0f})"
        )
    print(
        "  `import app` in the child (its own clock), wall median ms: "
        + ", ".join(f"{label} {med(imports[key]):.1f}" for label, key in rows)
    )
    print(
        "  peak RSS of the child (VmHWM), median MB: "
        + ", ".join(f"{label} {med(rss[key]):.1f}" for label, key in rows)
    )
    base, base_cpu = med(ref_times["botocore"]), med(ref_cpu["botocore"])
    print("  normalised to the `import botocore.session` reference of the same run:")
    for label, key in rows:
        w, c = med(times[key]), med(cpu[key])
        print(
            f"    {label:34} wall {w / base:4.2f}x ({w - base:+6.0f} ms), "
            f"CPU {c / base_cpu:4.2f}x ({c - base_cpu:+6.0f} ms)"
        )
    ok, src = times["bytecode"], times["source"]
    print(
        f"bench: cold_start_package median_ms={med(ok):.0f} min_ms={min(ok):.0f} "
        f"max_ms={max(ok):.0f} cpu_ms={med(cpu['bytecode']):.0f} "
        f"no_bytecode_median_ms={med(src):.0f} no_bytecode_cpu_ms={med(cpu['source']):.0f} "
        f"runs={runs} ref_pass_ms={med(ref_times['pass']):.0f} ref_botocore_ms={base:.0f} "
        f"ratio_to_botocore={med(ok) / base:.2f} peak_rss_mb={med(rss['bytecode']):.1f}"
    )
    return float(med(ok))


if __name__ == "__main__":
    sys.exit(main())
