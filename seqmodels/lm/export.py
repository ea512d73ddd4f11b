"""Export a run's model for serving: a TensorFlow SavedModel with a whole-sequence signature and
a one-step signature, or a TensorFlow Lite or ONNX file of the one-step signature.

The one-step signature takes token ids (B,) and the recurrent state and returns the next-token
logits (B, V) and the new state, so a server or an app generates with O(1) work per token, as
`seqmodels generate-text` does. States are named state_0, state_1, ...: per layer [h, c] for an
LSTM, [h] for a GRU or SimpleRNN, each (B, units), zeros at the start of a text. A token id
outside [0, V) gives NaN logits and a NaN state in every format (TFLite and ONNX have no
error to raise), never another token's logits.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from seqmodels.distribution import pip_install
from seqmodels.errors import SeqmodelsError
from seqmodels.files import require_utf8
from seqmodels.training.rundir import RunDir

if TYPE_CHECKING:
    from seqmodels.lm.model import LanguageModel

FORMATS = ("savedmodel", "tflite", "onnx")
STEP, SERVE = "step", "serving_default"
ONNX_OPSET = 17


def _archive(model: LanguageModel, text_in: bool = False):
    """A keras ExportArchive with the serving (ids (B, T) -> logits) and step signatures, and
    (text_in) the encode signature where TensorFlow ops can split the text."""
    from seqmodels.backend import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    network, step_model, sizes = model.network, model.step_model(), model.state_sizes
    archive = keras.export.ExportArchive()
    archive.track(network)

    vocab_size = model.vocab_size

    def checked(ids):
        """Ids outside [0, V) as 0 (an embedding would wrap -1 to the last row), and where."""
        valid = (ids >= 0) & (ids < vocab_size)
        return ids * tf.cast(valid, ids.dtype), valid

    def nan_where_not(valid, values):
        """values, NaN where not valid: plus 0/1 or 0/0 (elementwise, so every converter keeps
        it; tf2onnx turned a broadcast select into NaN everywhere)."""
        return values + 0.0 / tf.cast(valid, values.dtype)

    def serve(ids):
        safe, valid = checked(ids)
        since_valid = tf.cumsum(tf.cast(~valid, tf.int32), axis=1) == 0  # NaN from the first bad
        return {"logits": nan_where_not(since_valid[..., None],
                                        network(safe, training=False))}  # (B, T, V)

    def step(token, states):
        safe, valid = checked(token)
        logits, new = step_model(safe, list(states))
        return {"logits": nan_where_not(valid[:, None], logits),
                **{f"state_{i}": nan_where_not(valid[:, None], s) for i, s in enumerate(new)}}

    archive.add_endpoint(SERVE, serve, input_signature=[
        tf.TensorSpec((None, None), tf.int32, name="ids")])
    if text_in:
        _add_encode(archive, model)
    archive.add_endpoint(STEP, step, input_signature=[
        tf.TensorSpec((None,), tf.int32, name="token"),
        [tf.TensorSpec((None, n), tf.float32, name=f"state_{i}") for i, n in enumerate(sizes)]])
    return archive


ENCODE = "encode"  # text (a string) -> ids (T,): characters and bytes, in TensorFlow ops
TOKENIZER_FORMAT, TOKENIZER_VERSION = "seqmodels.tokenizer", 1
TOKENIZER_FILE = "tokenizer.json"  # in a SavedModel's assets.extra; beside a TFLite/ONNX file


def text_in_graph(model: LanguageModel) -> bool:
    """Whether TensorFlow ops can turn text into the model's ids: characters (split into code
    points) and bytes, with no normalisation beyond lowercasing."""
    tokenizer = model.tokenizer
    return (tokenizer is not None and tokenizer.graph_split is not None
            and tokenizer.normalize in ("none", "NFC"))


def _add_encode(archive, model: LanguageModel) -> None:
    """The encode signature: a string's characters (or bytes) looked up in the vocabulary,
    <unk> for those it lacks. NFC text is assumed (TensorFlow has no Unicode normaliser)."""
    from seqmodels.backend import import_tf
    from seqmodels.data.vocab import UNK_ID

    tf = import_tf()
    tokenizer = model._text()
    tokens = model.vocabulary.tokens
    as_bytes = tokenizer.graph_split == "bytes"
    keys = [t.encode("latin-1") if as_bytes else t.encode("utf-8") for t in tokens[2:]]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.range(2, len(tokens),
                                                                        dtype=tf.int32)),
        default_value=UNK_ID)
    archive.track(table)
    lowercase = tokenizer.lowercase

    def encode(text):
        if lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        pieces = (tf.strings.bytes_split(text) if as_bytes
                  else tf.strings.unicode_split(text, "UTF-8"))
        return {"ids": table.lookup(pieces)}

    archive.add_endpoint(ENCODE, encode, input_signature=[
        tf.TensorSpec((), tf.string, name="text")])


def tokenizer_document(model: LanguageModel) -> dict:
    """What a server needs to turn text into the model's ids without the run: the tokenizer's
    settings, its vocabulary (with a subword vocabulary's merges) and how to apply them."""
    tokenizer = model._text()
    return {"format": TOKENIZER_FORMAT, "version": TOKENIZER_VERSION,
            "tokenizer": tokenizer.to_config(), "vocabulary": model.vocabulary.to_json(),
            "unknown_id": 1, "how": tokenizer.how_to_apply}


def read_tokenizer(path: str | Path):
    """The tokenizer (with its vocabulary) an export carries: a SavedModel folder, a TFLite or
    ONNX file (its .tokenizer.json beside it), or that JSON file itself."""
    from seqmodels.data.tokenizers import tokenizer_from_config
    from seqmodels.data.vocab import Vocabulary
    from seqmodels.files import check_format, read_json

    path = Path(path)
    if path.is_dir():
        path = path / MARK.parent / TOKENIZER_FILE
    elif not path.name.endswith(".json"):
        path = beside(path)
    doc = check_format(read_json(path), TOKENIZER_FORMAT, TOKENIZER_VERSION, str(path),
                       "tokenizer")
    if not isinstance(doc.get("tokenizer"), dict):
        raise SeqmodelsError(f"{path}: no tokenizer settings")
    vocab = Vocabulary.from_json(doc.get("vocabulary"), f"{path} (vocabulary)")
    try:
        return tokenizer_from_config(doc["tokenizer"], vocab)
    except (TypeError, KeyError) as exc:
        raise SeqmodelsError(f"{path}: its tokenizer settings are damaged ({exc})") from None


def beside(out: Path) -> Path:
    """Where a TFLite or ONNX export's tokenizer goes: model.tflite -> model.tokenizer.json."""
    return out.with_name(out.stem + ".tokenizer.json")


def check_export(fmt: str, out: str | Path, force: bool = False) -> Path:
    """Refuse an export before any model is loaded: an unknown format, a missing converter, an
    output that exists (without force), or one that is not an earlier export."""
    if fmt not in FORMATS:
        raise SeqmodelsError(f"unknown export format {fmt!r}: choose one of "
                             f"{', '.join(FORMATS)}")
    if fmt == "onnx":
        _import_tf2onnx()
    out = Path(out)
    require_utf8(out, "`out`")
    _check_out(out, fmt, force)
    return out


def export(model: LanguageModel, fmt: str, out: str | Path, force: bool = False) -> Path:
    """Write the model to out in format fmt (savedmodel: a folder; tflite, onnx: a file)."""
    out = check_export(fmt, out, force)
    from seqmodels.files import remove_abandoned, temporary_folder

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(out)  # what a killed export of the same name left
        tmp = temporary_folder(out)  # this process's own, so two exports never share one
    except OSError as exc:
        raise SeqmodelsError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    try:
        _archive(model, fmt == "savedmodel" and text_in_graph(model)).write_out(
            str(tmp), verbose=False)
        document = (json.dumps(tokenizer_document(model), ensure_ascii=False)
                    if model.tokenizer is not None else None)  # a bare network: ids only
        if fmt == "savedmodel":
            _mark(tmp, model.path)
            if document is not None:
                (tmp / MARK.parent / TOKENIZER_FILE).write_text(document, encoding="utf-8")
        else:
            data = _tflite(tmp)
            shutil.rmtree(tmp)
            tmp.write_bytes(data)
            if fmt == "onnx":
                tmp.write_bytes(_onnx(tmp))
        _check_out(out, fmt, force)  # again: something may have appeared at out meanwhile
        if out.is_dir() and not out.is_symlink():  # an earlier SavedModel, and --force
            shutil.rmtree(out)
        if fmt != "savedmodel" and document is not None:  # the tokenizer first: a model
            from seqmodels.files import write_text_atomic  # file never lacks its own

            write_text_atomic(beside(out), document)
        tmp.replace(out)
    except OSError as exc:
        raise SeqmodelsError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    except Exception as exc:  # TensorFlow's file errors (tf.errors.OpError) carry a message
        if type(exc).__module__.startswith("tensorflow") and getattr(exc, "message", None):
            raise SeqmodelsError(f"{out}: cannot write the export ({exc.message})") from None
        raise
    finally:
        _remove(tmp)
    return out


MARK = Path("assets.extra") / "seqmodels.json"  # what --force looks for before replacing a folder


def _mark(folder: Path, run_dir: Path | None) -> None:
    """Sign a SavedModel folder as seqmodels' export (assets.extra is for files TensorFlow
    ignores) and give it the permissions of a folder made under the umask, not mkdtemp's 700."""
    (folder / MARK).parent.mkdir(exist_ok=True)
    (folder / MARK).write_text(json.dumps({"exported_by": "seqmodels",
                                                 "run": str(run_dir) if run_dir else None}))
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def _is_our_savedmodel(path: Path) -> bool:
    """Whether a folder is a SavedModel that seqmodels exported, holding nothing else: its own
    files only, no links, an empty assets/ and variables/ of TensorFlow's names only."""
    def kind(p: Path) -> str:
        mode = p.lstat().st_mode
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    if path.is_symlink() or not path.is_dir() or not (path / MARK).is_file():
        return False
    if kind(path / "assets.extra") != "dir" or kind(path / MARK) != "file":
        return False
    expected = {"saved_model.pb": "file", "fingerprint.pb": "file", "variables": "dir",
                "assets": "dir", "assets.extra": "dir"}
    if any(expected.get(name) != kind(path / name) for name in os.listdir(path)):
        return False
    extra = sorted(os.listdir(path / "assets.extra"))  # an older export has no tokenizer
    if extra not in ([MARK.name], sorted([MARK.name, TOKENIZER_FILE])):
        return False
    if (path / "assets").exists() and os.listdir(path / "assets"):
        return False
    variables = path / "variables"
    return not variables.exists() or all(
        (n == "variables.index" or n.startswith("variables.data-")) and kind(variables / n) ==
        "file" for n in os.listdir(variables))


def _remove(path: Path) -> None:
    """Remove our temporary: a link itself (never what it points to), a file or a folder."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _tflite(saved_model: Path) -> bytes:
    """The step signature of a SavedModel as TensorFlow Lite, in builtin ops only."""
    from seqmodels.backend import import_tf, native_stderr_muted

    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[STEP])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with native_stderr_muted():  # the converter's C++ logs every pass it runs
            return converter.convert()
    except Exception as exc:  # the converter raises several types; its first line says why
        raise SeqmodelsError(f"TensorFlow Lite could not convert this model "
                             f"({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    """A converter error's first line (at most 200 characters), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _import_tf2onnx():
    """tf2onnx, or one line naming the extra that brings it."""
    from seqmodels.backend import import_tf

    import_tf()  # first, quietly: tf2onnx imports TensorFlow
    try:
        import tf2onnx
    except ImportError:
        raise SeqmodelsError(f"ONNX export needs tf2onnx: {pip_install('onnx')}") from None
    return tf2onnx


def _onnx(tflite_file: Path) -> bytes:
    """The one-step TensorFlow Lite model as ONNX: token, state_0, ... -> logits, next_state_0,
    ... (ONNX names each tensor once) with a symbolic batch dimension."""
    import logging
    import warnings

    from seqmodels.backend import import_tf, native_stderr_muted

    tf2onnx, tf = _import_tf2onnx(), import_tf()
    tf2onnx.logging.set_level(logging.ERROR)
    try:  # quiet: tf.lite.Interpreter's deprecation notice and its delegate's C++ log
        with warnings.catch_warnings(), native_stderr_muted():
            warnings.simplefilter("ignore")
            runner = tf.lite.Interpreter(model_path=str(tflite_file)).get_signature_runner(STEP)
            proto, _ = tf2onnx.convert.from_tflite(str(tflite_file), opset=ONNX_OPSET)
        inputs = {d["name"]: name for name, d in runner.get_input_details().items()}
        outputs = {d["name"]: name if name == "logits" else f"next_{name}"
                   for name, d in runner.get_output_details().items()}
    except Exception as exc:  # tf2onnx raises several types; its first line says why
        raise SeqmodelsError(f"tf2onnx could not convert this model ({_first_line(exc)})"
                             ) from None
    graph = proto.graph
    renames = {**inputs, **outputs}
    for node in graph.node:
        for names in (node.input, node.output):
            renamed = [renames.get(n, n) for n in names]
            del names[:]
            names.extend(renamed)
    for field, first in ((graph.input, "token"), (graph.output, "logits")):
        values = {renames[v.name]: v for v in field}
        for value in values.values():
            value.name = renames[value.name]
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
        order = [first, *sorted(set(values) - {first}, key=_rank)]
        ordered = [type(values[name])() for name in order]
        for copy, name in zip(ordered, order, strict=True):
            copy.CopyFrom(values[name])
        del field[:]
        field.extend(ordered)
    return proto.SerializeToString()


def _rank(name: str) -> int:
    """state_12 -> 12."""
    return int(name.rsplit("_", 1)[1])


def _check_out(out: Path, fmt: str, force: bool) -> None:
    """A new path, or (with force) an earlier export of the same kind: a file for tflite, a
    SavedModel folder for savedmodel; never anything else."""
    from seqmodels.files import real_location

    if out.name == "..":  # 'new/..' would make 'new', then find its parent taken
        raise SeqmodelsError(f"{out} names a folder that exists; choose a new name for `out`")
    RunDir.check_not_reserved(out)  # a run's model.keras, though not written yet
    out = real_location(out)  # 'new/../model' is ./model once 'new' is made
    for parent in out.parents:  # the nearest existing folder above out must be a folder
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise SeqmodelsError(f"{out}: {parent} is not a folder; choose another `out`")
            break
    if not out.exists() and not out.is_symlink():
        _check_beside(out, fmt, force)
        return
    if (out / RunDir.CONFIG).is_file():  # `force` would be refused too: never suggest it
        raise SeqmodelsError(f"{out} is a run directory, which an export never replaces; "
                             f"choose another `out`")
    if not force:
        raise SeqmodelsError(f"{out} exists; pass `force` to replace it")
    if fmt == "savedmodel":
        if not _is_our_savedmodel(out):
            raise SeqmodelsError(f"{out} exists and is not a SavedModel folder that seqmodels "
                                 f"exported (holding nothing else); `force` replaces only such "
                                 f"an export, so choose another `out`")
    else:
        from seqmodels.files import check_output

        check_output(out, force)
        if not _is_export(out, fmt):
            raise SeqmodelsError(f"{out} exists and is not a {fmt} file; `force` replaces only "
                                 f"an earlier export, so choose another `out`")
        _check_beside(out, fmt, force)


def _check_beside(out: Path, fmt: str, force: bool) -> None:
    """The tokenizer a TFLite or ONNX export writes beside it is replaced on the same terms."""
    side = beside(out)
    if fmt == "savedmodel" or not (side.exists() or side.is_symlink()):
        return
    if not force:
        raise SeqmodelsError(f"{side} exists (the tokenizer an export writes beside "
                             f"{out.name}); pass `force` to replace it")
    from seqmodels.files import check_output, read_json

    check_output(side, force)
    try:
        ours = isinstance(doc := read_json(side), dict) and doc.get("format") == TOKENIZER_FORMAT
    except SeqmodelsError:
        ours = False
    if not ours:
        raise SeqmodelsError(f"{side} exists and is not a tokenizer that seqmodels exported; "
                             f"`force` replaces only that, so move it or choose another `out`")


def _is_export(path: Path, fmt: str) -> bool:
    """Whether a file holds a TFLite (its FlatBuffer mark TFL3) or ONNX model."""
    if path.is_symlink() or not path.is_file():
        return False
    if fmt == "tflite":
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    import onnx

    try:
        return len(onnx.load(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # not a protobuf, or not a model: onnx raises several types
        return False
