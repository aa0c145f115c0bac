"""MkDocs hooks: the configuration and CLI references, generated from the code at build time, the changelog from
CHANGELOG.md, and the result records' plots (benchmarks/results/) served beside the Results and Benchmarks pages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "egl")  # the CLI reference imports the envs: no display here
sys.path.insert(0, str(ROOT / "docs"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from reference_pages import cli_page, configuration_page  # noqa: E402
from render_results import SITE_RESULTS  # noqa: E402

IMAGES = (".png", ".svg")


def on_files(files: Files, config) -> Files:
    generated = {"reference/configuration.md": configuration_page(), "reference/cli.md": cli_page(),
                 "changelog.md": (ROOT / "CHANGELOG.md").read_text()}
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    results = ROOT / "benchmarks" / "results"
    for path in sorted(results.glob("*/*")):
        if path.suffix in IMAGES:
            uri = f"{SITE_RESULTS}/{path.parent.name}/{path.name}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
