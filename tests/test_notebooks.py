"""Run every notebook in notebooks/ top to bottom with nbclient, on this interpreter's kernel."""

import json
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "seqmodels-test-python"  # a kernelspec of our own, so no other Python is picked up
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec that runs ipykernel under sys.executable, and a temp folder for outputs."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "seqmodels tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    work = tmp_path / "work"
    monkeypatch.setenv("SEQMODELS_NOTEBOOK_DIR", str(work))  # the notebooks write only here
    return work


def execute(nb, cwd: Path):
    """Execute a notebook in place; a failing cell fails the test with its source and error."""
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(ANSI.sub("", str(exc)), pytrace=False)
    return nb


def test_notebooks_exist_numbered_and_are_stored_with_their_outputs():
    """`make notebooks` executes them in place, so a reader on GitHub sees figures and
    numbers; a stored error or a cell left unexecuted fails here."""
    names = [p.stem for p in NOTEBOOKS]
    assert names[:4] == ["01-data-pipeline", "02-vanishing-and-exploding-gradients",
                         "03-train-evaluate-generate", "04-sequence-length"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), path
        assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], path
        if path.stem not in ("01-data-pipeline", "04-sequence-length"):  # those draw none
            assert any(o.output_type == "display_data" for cell in code for o in cell.outputs)


def test_kernel_is_this_python(kernel_env, tmp_path):
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
    nb = nbformat.v4.new_notebook(cells=[probe])
    execute(nb, tmp_path)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_a_failing_cell_fails_readably(kernel_env, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    with pytest.raises(pytest.fail.Exception) as info:
        execute(nb, tmp_path)
    assert "ZeroDivisionError" in str(info.value) and "1 / 0" in str(info.value)
    assert "\x1b[" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env, tmp_path):
    nb = execute(nbformat.read(path, as_version=4), tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert any(kernel_env.iterdir())  # it wrote its files to the temporary folder


def test_a_notebook_kernel_gets_the_notebook_bar(kernel_env, tmp_path):
    """Under ipykernel stderr is not a terminal: the bar is tqdm's notebook widget, shown."""
    code = ("from tqdm.notebook import tqdm_notebook\n"
            "from seqmodels.progress import in_notebook, progress_bar\n"
            "bar = progress_bar(total=3)\n"
            "print(in_notebook(), isinstance(bar, tqdm_notebook), bar.disable)")
    nb = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), tmp_path)
    printed = "".join(o["text"] for o in nb.cells[0].outputs
                      if o.output_type == "stream" and o["name"] == "stdout")
    assert printed.split() == ["True", "True", "False"]
