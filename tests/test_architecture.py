"""The shape the package keeps, read from its source: run-file names in RunDir alone, the level
asked of the tokenizer, a training engine that knows no task, public calls of at most 8
parameters, and names an IDE sees."""

import ast
import inspect
import typing
from pathlib import Path

import pytest

import seqmodels
from seqmodels.training.rundir import RunDir

PACKAGE = Path(seqmodels.__file__).parent
RUN_FILES = (RunDir.CONFIG, RunDir.MODEL, RunDir.VOCAB, RunDir.SCALER, RunDir.HISTORY,
             RunDir.PLOT, RunDir.SAMPLES, RunDir.LATEST, RunDir.PREVIOUS, RunDir.FORECAST_PLOT)
# a .keras file is a zip whose member "config.json" is Keras' own, not a run's file
KERAS_ARCHIVE = PACKAGE / "models" / "saving.py"


def modules(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_run_file_names_live_in_rundir_alone():
    spelt = {}
    for path in modules():
        if path == PACKAGE / "training" / "rundir.py":
            continue
        for text in code_strings(path):
            for name in RUN_FILES:
                if name in text and not (path == KERAS_ARCHIVE and name == RunDir.CONFIG):
                    spelt.setdefault(str(path.relative_to(PACKAGE)), set()).add(name)
            if text == RunDir.CHECKPOINTS:
                spelt.setdefault(str(path.relative_to(PACKAGE)), set()).add(text)
    assert spelt == {}


def test_only_the_data_layer_compares_the_level():
    """Char or word is asked of the Tokenizer; no other module tests the level's string."""
    found = []
    for path in modules():
        if path.is_relative_to(PACKAGE / "data"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            words = {n.value for part in parts for n in ast.walk(part)
                     if isinstance(n, ast.Constant) and n.value in ("char", "word")}
            level = any(isinstance(n, ast.Attribute) and n.attr == "level"
                        or isinstance(n, ast.Constant) and n.value == "level"
                        for part in parts for n in ast.walk(part))
            if words or level:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_the_training_engine_imports_no_task():
    tasks = ("seqmodels.data", "seqmodels.lm", "seqmodels.forecast", "seqmodels.models",
             "seqmodels.diagnostics", "seqmodels.cli")
    found = []
    for path in modules("training"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.startswith(tasks)]
    assert found == []


@pytest.mark.parametrize("call", [
    seqmodels.train, seqmodels.train_forecaster, seqmodels.load, seqmodels.prepare_corpus,
    seqmodels.LanguageModel.generate, seqmodels.LanguageModel.evaluate,
    seqmodels.LanguageModel.export, seqmodels.LanguageModel.step,
], ids=lambda call: call.__qualname__)
def test_public_calls_take_at_most_eight_parameters(call):
    parameters = [p for p in inspect.signature(call).parameters if p != "self"]
    assert len(parameters) <= 8, parameters


def test_the_public_names_are_real_imports_an_ide_sees():
    assert not hasattr(seqmodels, "__getattr__")  # no lazy module attributes
    assert all(hasattr(seqmodels, name) for name in seqmodels.__all__)
    assert (PACKAGE / "py.typed").is_file()
    assert typing.get_type_hints(seqmodels.load)["return"] is seqmodels.LanguageModel
    assert typing.get_type_hints(seqmodels.train)["return"] is seqmodels.Run
