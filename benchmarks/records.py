"""Result records: every benchmark and study writes its figures as ``benchmarks/results/<name>/record.json``, with the
exact command, the commit, the date and the machine, so the docs' Results and Benchmarks pages and the README's
headline table are rendered from files (``render_results.py``), never typed in.

A record's keys: ``name``, ``kind`` (``study`` or ``benchmark``), ``title``, ``date``, ``commit``, ``machine``,
``command``, and optionally ``table`` (markdown), ``headline`` (rows for the README: task, algorithm, metric,
one value per budget), ``figures`` (any JSON), ``plots`` (image files beside the record) and ``notes``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
RECORD = "record.json"
KINDS = ("study", "benchmark")
REQUIRED = ("name", "kind", "title", "date", "commit", "machine", "command")


def current_commit() -> str:
    """The checkout's short commit, with ``+dirty`` when tracked files differ from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine_line() -> str:
    """CPU model, cores and memory, and the GPU if torch sees one."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    meminfo = Path("/proc/meminfo")
    memory = ""
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    line = f"{cpu}, {os.cpu_count()} cores{memory}"
    try:
        import torch

        if torch.cuda.is_available():
            line += f", GPU {torch.cuda.get_device_name(0)}"
        line += f", torch {torch.__version__}"
    except ImportError:
        pass
    return line


def invoked_command() -> str:
    """The command line this process was started with, as a shell would read it."""
    return shlex.join(["python", *sys.argv])


def write_record(folder: Path, *, name: str, kind: str, title: str, figures: Any = None, table: str | None = None,
                 headline: list[dict] | None = None, plots: list[str] | None = None, notes: list[str] | None = None,
                 command: str | None = None, commit: str | None = None) -> Path:
    """Write ``folder/record.json`` (the date, commit, machine and command filled in from this run unless given)."""
    if kind not in KINDS:
        raise ValueError(f"record kind {kind!r} is not one of {KINDS}")
    record = {"name": name, "kind": kind, "title": title, "date": datetime.date.today().isoformat(),
              "commit": commit or current_commit(), "machine": machine_line(), "command": command or invoked_command()}
    optional = {"table": table, "headline": headline, "figures": figures, "plots": plots, "notes": notes}
    record.update({key: value for key, value in optional.items() if value})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def load_records(results: Path = RESULTS) -> list[dict]:
    """Every record under ``results``, newest first; a record missing a required key fails naming the file."""
    records = []
    for path in sorted(results.glob(f"*/{RECORD}")):
        record = json.loads(path.read_text())
        missing = [key for key in REQUIRED if not record.get(key)]
        if missing or record["kind"] not in KINDS:
            raise ValueError(f"{path}: missing {missing} or a kind not in {KINDS}")
        record["folder"] = path.parent.name
        records.append(record)
    return sorted(records, key=lambda r: (r["date"], r["name"]), reverse=True)
