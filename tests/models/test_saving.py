"""Loading is safe: safe_mode=True only, no Lambda or foreign classes, no pickle anywhere."""

import ast
import configparser
import re
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli
from seqmodels.errors import SeqmodelsError
from seqmodels.models.saving import load_model

PACKAGE = Path(__file__).resolve().parents[2] / "seqmodels"


@pytest.fixture(scope="module")
def keras():
    from seqmodels.backend import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, keras):
    """A minimal run directory (config.json + vocab.json) and a plain model.keras of V=5."""
    from seqmodels.data.vocab import Vocabulary
    from seqmodels.training.rundir import RunDir

    root = tmp_path_factory.mktemp("safe") / "run"
    root.mkdir()
    RunDir(root).write_config({"data": {"corpus": [], "level": "char"}, "model": {},
                               "train": {}})
    Vocabulary(["<pad>", "<unk>", "a", "b", "c"]).save(root / "vocab.json")
    return root


def _tiny(keras, middle):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(5, 4)(inputs)
    x = middle(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def test_a_plain_keras_model_loads(tmp_path, keras):
    path = tmp_path / "model.keras"
    _tiny(keras, keras.layers.GRU(3, return_sequences=True)).save(path)
    model = load_model(path)
    assert model.outputs[0].shape[-1] == 5


def test_a_lambda_layer_is_refused(run_dir, tmp_path, keras):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    _tiny(keras, keras.layers.Lambda(lambda x: x * 2.0)).save(run / "model.keras")
    with pytest.raises(SeqmodelsError, match="refused to load a Lambda layer"):
        load_model(run / "model.keras")
    for args in (["evaluate", str(run), "--corpus", str(run / "vocab.json"), "-q"],
                 ["generate", str(run), "-n", "3", "--prompt", "a"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert "model.keras: refused to load a Lambda layer" in result.stderr


def test_a_class_outside_keras_is_refused_even_when_registered(run_dir, tmp_path, keras):
    """Keras' own safe mode would load it (the class is registered in this process); we do not."""

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    try:
        run = tmp_path / "run"
        shutil.copytree(run_dir, run)
        _tiny(keras, Doubler()).save(run / "model.keras")
        assert keras.models.load_model(run / "model.keras", safe_mode=True)  # keras: loads
        with pytest.raises(SeqmodelsError, match="not part of keras or seqmodels"):
            load_model(run / "model.keras")
        result = CliRunner().invoke(cli, ["generate", str(run), "-n", "3", "--prompt", "a"])
        assert result.exit_code == 1 and "not part of keras or seqmodels" in result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        keras.saving.get_custom_objects().pop("elsewhere>Doubler", None)


def test_an_unregistered_foreign_class_is_refused(tmp_path, keras):
    class Halver(keras.layers.Layer):
        def call(self, x):
            return x * 0.5

    path = tmp_path / "model.keras"
    _tiny(keras, Halver()).save(path)
    with pytest.raises(SeqmodelsError, match="not part of keras or seqmodels"):
        load_model(path)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def _keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_lines(text: str, where: str) -> list[str]:
    """Pickle imports, pickle-enabled np.load and unsafe Keras loading in one source file."""
    problems = []
    for pattern in (r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b",
                    r"\bpickle\.", r"allow_pickle\s*=\s*True", r"safe_mode\s*=\s*False",
                    r"enable_unsafe_deserialization", r"\bread_pickle\b"):
        for m in re.finditer(pattern, text, re.MULTILINE):
            problems.append(f"{where}: {m.group(0).strip()}")
    for name, call in _calls(ast.parse(text)):
        if name == "load" and isinstance(call.func, ast.Attribute) and getattr(
                call.func.value, "id", None) in ("np", "numpy"):
            flag = _keyword(call, "allow_pickle")
            if not (isinstance(flag, ast.Constant) and flag.value is False):
                problems.append(f"{where}:{call.lineno}: np.load without allow_pickle=False")
        if name == "load_model" and "runs" not in ast.unparse(call.func) and isinstance(
                call.func, ast.Attribute):  # keras.models.load_model, keras.saving.load_model
            flag = _keyword(call, "safe_mode")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where}:{call.lineno}: load_model without safe_mode=True")
    return problems


def test_the_source_check_finds_what_it_looks_for():
    bad = ("import pickle\nfrom joblib import load\nx = np.load(\n  'a.npy')\n"
           "y = np.load('b.npz', allow_pickle=True)\nm = keras.models.load_model(p)\n"
           "n = keras.saving.load_model(p, safe_mode=False)\n")
    assert len(unsafe_lines(bad, "bad.py")) == 8  # two lines are caught twice
    good = ("x = np.load(p, mmap_mode='r',\n            allow_pickle=False)\n"
            "m = keras.models.load_model(p, compile=False, safe_mode=True)\n")
    assert unsafe_lines(good, "good.py") == []


def test_no_pickle_and_no_unsafe_loading_in_the_package():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    problems = [p for path in sources for p in unsafe_lines(
        path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))]
    assert not problems, problems


def test_checkpoints_are_read_without_pickle(tmp_path):
    from seqmodels.training import checkpoint

    path = tmp_path / "latest.npz"
    np.savez(path, **{"state.json": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(SeqmodelsError, match="damaged checkpoint"):
        checkpoint.read(path)


def test_keras_is_pinned_to_a_release_with_the_safe_mode_fixes():
    setup = configparser.ConfigParser()
    setup.read(PACKAGE.parent / "setup.cfg")
    requires = setup["options"]["install_requires"].split()
    assert "keras>=3.13" in requires
    installed = tuple(int(p) for p in re.findall(r"\d+", version("keras"))[:2])
    assert installed >= (3, 13)
