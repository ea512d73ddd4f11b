"""What a distribution packager gets: an sdist that holds the suite and runs it, and install
hints that name our distribution, not the unrelated `seqmodels` on the package index."""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_install_hint_names_the_other_projects_distribution():
    hint = re.compile(r"pip install[^\n]*?['\" ]seqmodels(?![-\w])")
    places = [*ROOT.glob("seqmodels/**/*.py"), ROOT / "README.md", *ROOT.glob("docs/**/*.md"),
              ROOT / "notebooks" / "README.md"]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in places if p.exists()
             for m in hint.finditer(p.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="builds from a checkout")
def test_the_sdist_holds_the_suite_and_its_tests_run_from_it(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    [sdist] = tmp_path.glob("seqmodels_rnn-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [unpacked] = [p for p in tmp_path.iterdir() if p.is_dir()]
    tracked = subprocess.run(["git", "ls-files", "tests", "notebooks", "benchmarks", "data",
                              "LICENSE", "CHANGELOG.md", "Makefile"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    assert [name for name in tracked if not (unpacked / name).is_file()] == []
    env = {**os.environ, "PYTHONPATH": str(unpacked)}  # its own seqmodels, not the checkout's
    check = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_settings.py", "tests/data/test_vocab.py"],
        cwd=unpacked, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert " passed" in check.stdout
    where = subprocess.run([sys.executable, "-c", "import seqmodels; print(seqmodels.__file__)"],
                           cwd=unpacked, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(unpacked)
