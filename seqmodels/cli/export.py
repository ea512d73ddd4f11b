"""`seqmodels export`: a run's model as a TensorFlow SavedModel, TensorFlow Lite or ONNX file."""

from __future__ import annotations

import click

from seqmodels.cli.options import NamedPath

# seqmodels.lm.export.FORMATS, without importing TensorFlow
FORMATS = ("savedmodel", "tflite", "onnx")


@click.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="savedmodel",
              show_default=True,
              help="savedmodel: a folder for TensorFlow Serving and tf.saved_model.load, with "
                   "a whole-sequence signature and a one-step one; tflite: a file holding the "
                   "one-step signature, for phones and microcontrollers; onnx: a file holding the "
                   "one-step signature, for ONNX Runtime (needs seqmodels[onnx]).")
@click.option("--out", type=NamedPath(), default=None,
              help="Where to write [default: RUN/export/model (savedmodel) or "
                   "RUN/export/model.tflite or model.onnx].")
@click.option("--force", is_flag=True, help="Replace an earlier export at --out.")
def export(run, fmt, out, force) -> None:
    """Export RUN's best model for serving, with a one-step signature (token ids + state ->
    logits + state) so a server or an app generates with O(1) work per token."""
    from pathlib import Path

    from seqmodels.lm.export import export_run

    if out is None:
        from seqmodels.training.rundir import check_own_folder

        check_own_folder(Path(run) / "export")  # never into a linked RUN/export/
    out = Path(out) if out else Path(run) / "export" / (
        "model" if fmt == "savedmodel" else f"model.{fmt}")
    written = export_run(run, fmt, out, force)
    click.echo(str(written))
