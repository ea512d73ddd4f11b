"""`seqmodels export`: a run's model as a TensorFlow SavedModel, TensorFlow Lite or ONNX file."""

from __future__ import annotations

import json

import click

from seqmodels.cli.options import NamedPath, json_option

# seqmodels.lm.export.FORMATS, without importing TensorFlow
FORMATS = ("savedmodel", "tflite", "onnx")


@click.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="savedmodel",
              show_default=True,
              help="savedmodel: a folder for TensorFlow Serving and tf.saved_model.load, with "
                   "a whole-sequence signature and a one-step one; tflite: a file holding the "
                   "one-step signature, for phones and microcontrollers; onnx: a file holding the "
                   "one-step signature, for ONNX Runtime (needs the extra: pip install "
                   "'seqmodels-rnn[onnx]').")
@click.option("--out", type=NamedPath(), default=None,
              help="Where to write [default: RUN/export/model (savedmodel) or "
                   "RUN/export/model.tflite or model.onnx].")
@click.option("--force", is_flag=True, help="Replace an earlier export at --out.")
@json_option("what was written")
def export(run, fmt, out, force, as_json) -> None:
    """Export RUN's best model for serving, with a one-step signature (token ids + state ->
    logits + state) so a server or an app generates with O(1) work per token."""
    from seqmodels.lm.export import check_export
    from seqmodels.lm.model import LanguageModel
    from seqmodels.lm.pretrained import export_folder, resolve
    from seqmodels.training.rundir import RunDir

    if out is None:
        out = RunDir(export_folder(resolve(run))).export_path(fmt)
    out = check_export(fmt, out, force)  # before loading
    written = LanguageModel.load(run).export(fmt, out, force)
    click.echo(json.dumps({"run": str(run), "format": fmt, "path": str(written)}) if as_json
               else str(written))
