"""How long the README's two set-up commands take on a fresh clone, step by step, as a result record.

Clones this checkout's HEAD into a new folder with an empty TMPDIR, dataset cache and pip cache, then times, one
after the other: the main job's install, its dataset generation (``vgf-ray make-dataset`` at the quickstart's
size), its training (``vgf-ray train tune_configs/quickstart.yaml``, the dataset already cached), the test install
and the test run. Writes ``benchmarks/results/setup-durations/record.json``; the README's set-up figures are
rendered from it. Run it on a quiet machine: it takes about half an hour on 2 cores.

Usage: python benchmarks/setup_durations.py [--workdir /tmp/vgf-setup] [--skip-tests]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import RESULTS, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ".venv/bin/pip install torch==2.13.0 -e ."
TEST_INSTALL = '.venv/bin/pip install -q torch==2.13.0 -e ".[dev]"'
QUICKSTART = "tune_configs/quickstart.yaml"


def timed(label: str, command: str, cwd: Path, env: dict) -> tuple[float, str]:
    """Run ``command`` in a shell; fail naming the step if it fails. Returns (seconds, its output)."""
    print(f"[setup] {label}: {command}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"[setup] {label} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    print(f"[setup] {label}: {seconds / 60:.1f} min", flush=True)
    return seconds, done.stdout + done.stderr


STEPS = {"install_s": "main job: install", "dataset_s": "main job: dataset generation",
         "train_s": "main job: training and evaluation", "test_install_s": "tests: install",
         "tests_s": "tests: the suite"}


def durations_table(figures: dict) -> str:
    """The record's table: minutes per step, and the main job's final success per budget."""
    rows = ["| step | minutes |", "|---|---|"]
    rows += [f"| {label} | {figures[key] / 60:.1f} |" for key, label in STEPS.items() if key in figures]
    final = figures.get("final_evaluation", {})
    if final:
        rows.append("| main job: final success at L = " + " / ".join(k.split("_")[-1] for k in final) + " | "
                    + " / ".join(f"{v['success']:.2f}" for v in final.values()) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="where the fresh clone goes (default: a new temp folder)")
    parser.add_argument("--skip-tests", action="store_true", help="time the main job only")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vgf-setup-"))
    clone = work / "clone"
    for leftover in ("clone", "tmp", "data"):  # a reused --workdir must not hide a step (a cached dataset)
        shutil.rmtree(work / leftover, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    # No pip cache either: a fresh machine downloads every wheel.
    env = {**os.environ, "TMPDIR": str(tmp), "VGF_RAY_DATA_DIR": str(work / "data"), "PIP_NO_CACHE_DIR": "1"}
    size = re.search(r"num_transitions:\s*(\d+)", (clone / QUICKSTART).read_text()).group(1)
    figures: dict = {}
    figures["install_s"], _ = timed("install", f"python3 -m venv .venv && {INSTALL}", clone, env)
    figures["dataset_s"], _ = timed("dataset", f".venv/bin/vgf-ray make-dataset cube-single-play --size {size}",
                                    clone, env)
    figures["train_s"], _ = timed("train", f".venv/bin/vgf-ray train {QUICKSTART} --json", clone, env)
    final = json.loads((clone / "runs" / "quickstart" / "final_evaluation.json").read_text())
    figures["final_evaluation"] = final
    if not args.skip_tests:
        figures["test_install_s"], _ = timed("test install", TEST_INSTALL, clone, env)
        figures["tests_s"], output = timed("tests", ".venv/bin/python -m pytest -q -rs -p no:cacheprovider", clone, env)
        passed = re.search(r"(\d+) passed", output)
        figures["tests_passed"] = int(passed.group(1)) if passed else None
    command = "python benchmarks/setup_durations.py" + (" --skip-tests" if args.skip_tests else "")
    path = write_record(RESULTS / "setup-durations", name="setup-durations", kind="benchmark", figures=figures,
                        title="The README's set-up commands on a fresh clone: install, dataset, training, tests",
                        table=durations_table(figures),
                        command=command, commit=commit,
                        notes=["Timed on a fresh clone with an empty TMPDIR, dataset cache and pip cache."])
    print(f"[setup] record: {path}")


if __name__ == "__main__":
    main()
