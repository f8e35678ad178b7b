"""Compiled bytecode in the deployment zip, for the runtime's Python.

Lambda unpacks the zip into a read-only /var/task: without `.pyc` files beside the
sources, every cold start compiles every module it imports (app, chalicelib,
Powertools, the bundled wheels' Python) and cannot keep the result, ~150 ms of a
cold start on this machine (`make bench`, `cold start from the package`).

`add(zip, runtime)` rewrites the zip with a `__pycache__/<name>.cpython-3XY.pyc` for
every `.py` in it, compiled by this interpreter, which must be the runtime's
(`RUNTIME_MAGIC`, the bytecode magic number each CPython release line writes).
The files are unchecked-hash pycs (PEP 552): Python loads them without looking at
the source's modification time, which unzipping does not preserve reliably, and
without hashing the source on every import; the zip is immutable once deployed, so
a check could only cost time. Each still records the source's hash, which the
packaged-zip test compares (tests/unit/test_package_zip.py).
"""

from __future__ import annotations

import importlib.util
import marshal
import zipfile
from pathlib import Path, PurePosixPath

# CPython's bytecode magic number per Lambda runtime (Lib/importlib/_bootstrap_external.py).
RUNTIME_MAGIC = {"python3.11": 3495, "python3.12": 3531, "python3.13": 3571}
# PEP 552 flags: bit 0 hash-based, bit 1 check the source. Hash-based, unchecked.
UNCHECKED_HASH = 0b01


def magic(runtime: str) -> bytes:
    """The four bytes a pyc for `runtime` starts with."""
    return RUNTIME_MAGIC[runtime].to_bytes(2, "little") + b"\r\n"


def cache_name(source: str, runtime: str) -> str:
    """`pkg/mod.py` -> `pkg/__pycache__/mod.cpython-312.pyc` (where the import system
    looks for it)."""
    p = PurePosixPath(source)
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    return str(p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").removeprefix("./")


def pyc(source: bytes, filename: str) -> bytes:
    """An unchecked-hash pyc of `source` for this interpreter (SyntaxError if it is not
    Python this version compiles)."""
    code = compile(source, filename, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + UNCHECKED_HASH.to_bytes(4, "little")
    return header + importlib.util.source_hash(source) + marshal.dumps(code)


def add(zip_path: Path, runtime: str) -> int:
    """Rewrite `zip_path` with bytecode for every Python source in it; returns how many
    files were compiled. Pycs already in the zip are replaced (a wheel's may be for
    another Python or timestamp-based)."""
    if importlib.util.MAGIC_NUMBER != magic(runtime):
        raise SystemExit(
            f"bytecode for {runtime} needs that Python (this one writes magic "
            f"{importlib.util.MAGIC_NUMBER!r}, {runtime} reads {magic(runtime)!r})"
        )
    tmp = zip_path.with_name(zip_path.name + ".tmp")
    compiled = 0
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            name = info.filename
            if name.endswith(".pyc") and "/__pycache__/" in f"/{name}":
                continue
            data = src.read(info)
            dst.writestr(info, data)
            if info.is_dir() or not name.endswith(".py"):
                continue
            try:
                body = pyc(data, name)
            except (SyntaxError, ValueError):
                # A file no import will load (a template, an example in another dialect):
                # the import system would fail on it the same way with or without a pyc.
                continue
            out = zipfile.ZipInfo(cache_name(name, runtime), date_time=info.date_time)
            out.external_attr = 0o644 << 16
            out.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(out, body)
            compiled += 1
    tmp.replace(zip_path)
    return compiled
