"""The documentation site builds strictly: every page in the nav, every link and anchor whole,
the command-line reference generated from the commands and the API reference from the
docstrings."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_build_strictly_with_both_references(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "seqmodels train [OPTIONS] [CORPUS]..." in cli and "--max-time" in cli
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "fit_to_budget" in api and "LanguageModel" in api


def test_the_readme_stays_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "](docs/" in readme and "![" not in readme  # no image: it would break on the index
    import re

    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
