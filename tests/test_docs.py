"""The front door: the README stays short and its figures come from the result records, the docs site builds
strictly with every internal link resolving, the version is one, and no tracked file tells how it was built."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import render_results  # noqa: E402

README_MAX_LINES = 200
# Words that tell how the repository was built rather than what it does.
# Character classes keep the pattern from matching its own source, so the scan covers this file too.
PROCESS_WORDS = re.compile(
    r"\bissu[e] #?\d+|\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|this|last|next|earlier|"
    r"previous) sessio[n]\b|\bsessio[n] \d+\b|\bth[e] revie[w]\b|\blen[t] (gpu )?machin[e]|\bdevic[e] too[l]\b|"
    r"\bclosin[g] not[e]\b",
    re.IGNORECASE)


def test_readme_is_short_and_its_figures_come_from_the_records():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES
    for path, text in render_results.rendered().items():
        assert path.read_text() == text, f"{path.name} is out of date: python benchmarks/render_results.py"
    table = render_results.headline_table(render_results.load_records())
    assert table.count("\n") >= 3 and "VGF" in table  # the headline table has rows, not just a header


def test_rendering_fails_on_a_record_without_its_command(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "record.json").write_text('{"name": "broken", "kind": "study", "title": "t", "date": "d", '
                                        '"commit": "c", "machine": "m"}')
    with pytest.raises(ValueError, match="broken/record.json: missing \\['command'\\]"):
        render_results.load_records(tmp_path)


def test_no_tracked_file_tells_how_the_repository_was_built():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert len(files) > 100
    hits = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".npz", ".db"):
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if PROCESS_WORDS.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits[:20])
    samples = ("as found in the " + "rev" + "iew", "fixed for is" + "sue 12", "in the last " + "session")
    assert all(PROCESS_WORDS.search(sample) for sample in samples)  # the scan can fire


def test_one_version_for_the_package_and_the_changelog():
    import vgf_ray

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert vgf_ray.__version__ == version
    releases = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert releases and releases[0] == version


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.links.append(value)


def test_docs_build_strictly_and_every_internal_link_resolves(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[dev]'")
    site = tmp_path / "site"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(site)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    assert {"reference/configuration/index.html", "reference/cli/index.html", "results/index.html"} <= {
        str(p.relative_to(site)) for p in pages}
    broken = []
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            url = urlparse(link)
            if url.scheme or url.netloc or link.startswith(("#", "mailto:", "data:")):
                continue
            base = site if url.path.startswith("/") else page.parent  # 404.html links from the site's root
            target = (base / unquote(url.path).lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert not broken, "\n".join(broken[:20])
    configuration = (site / "reference" / "configuration" / "index.html").read_text()
    assert "train_vgf_steps" in configuration and "transport step size" in configuration
