"""`make wheels`: the Lambda wheels of requirements.txt, downloaded once into a wheelhouse.

    python infra/wheels.py [--dest .wheels]       # prints the wheelhouse's path

Wheels for the Lambda runtime `.chalice/config.json` declares (`lambda_runtime`,
python3.12): CPython of that version, manylinux x86_64 up to the runtime's glibc
(2.34 on Amazon Linux 2023), binary only. `make package` and the packaged-zip test
(tests/unit/test_package_zip.py) build from this directory with pip's index turned
off (infra/package.py --wheelhouse), so the zip that is tested is the zip that
deploys, and the tests never reach the network. Downloads again only when
requirements.txt changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Amazon Linux 2023 (python3.12 and later runtimes) has glibc 2.34; the same limit
# chalice applies when it picks wheels.
RUNTIME_GLIBC = {"python3.12": (2, 34), "python3.13": (2, 34), "python3.11": (2, 26)}


def runtime() -> str:
    """The Lambda runtime the project declares (`.chalice/config.json`, `lambda_runtime`)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    value: str = config["lambda_runtime"]
    return value


def check_interpreter() -> str | None:
    """Why this Python cannot package for the declared runtime (Chalice derives the
    runtime from the Python running it), or None."""
    want, have = runtime(), f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if want != have:
        return (
            f".chalice/config.json declares {want}, but this is {have}: Chalice would "
            f"deploy {have}. Run with {want} (`make setup` picks it when installed)."
        )
    return None


def platforms(rt: str) -> list[str]:
    major, minor = RUNTIME_GLIBC[rt]
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(17, minor + 1)]
    return [*tags, "manylinux2014_x86_64"]


def wheelhouse(dest: Path, rt: str) -> Path:
    """Download (unless up to date) and return the wheelhouse for `rt`."""
    reqs = (ROOT / "requirements.txt").read_bytes()
    target = dest / rt
    stamp = target / ".requirements-sha256"
    digest = hashlib.sha256(reqs).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return target
    target.mkdir(parents=True, exist_ok=True)
    version = rt.removeprefix("python")
    args = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    args += ["--only-binary=:all:", "--implementation", "cp", "--python-version", version]
    args += ["--abi", "cp" + version.replace(".", "")]
    for tag in platforms(rt):
        args += ["--platform", tag]
    args += ["--dest", str(target), "-r", str(ROOT / "requirements.txt")]
    result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    # Without pip's complaints about this machine's unused local index folders.
    noise = "is ignored: it is neither a file nor a directory"
    sys.stderr.write("".join(ln for ln in result.stderr.splitlines(True) if noise not in ln))
    if result.returncode:
        raise SystemExit(f"pip download failed ({result.returncode}): see above")
    stamp.write_text(digest)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=str(ROOT / ".wheels"))
    args = ap.parse_args(argv)
    print(wheelhouse(Path(args.dest), runtime()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
