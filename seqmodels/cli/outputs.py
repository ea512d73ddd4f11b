"""What a command's own output file (a plot, an exported text or series) may never replace."""

from __future__ import annotations

from pathlib import Path

from seqmodels.files import check_output, real_location
from seqmodels.training.rundir import RunDir


def check_output_file(path: str | Path, force: bool,
                      inputs: list[tuple[str | Path, str]] = ()) -> Path:
    """files.check_output, the files of any run the path lies in (or in its checkpoints) and
    the installed data files counted among the inputs: an output never replaces a run's
    settings or model (present or to come), nor the built-in corpus or series."""
    path = Path(path)
    RunDir.check_not_reserved(path)
    run = RunDir.of_file(real_location(path))
    own = run.own_files() if run is not None else []
    return check_output(path, force, [*inputs, *own, *installed_files()])


def installed_files() -> list[tuple[Path, str]]:
    """The data files installed with seqmodels (the built-in series and corpus)."""
    from seqmodels.data.corpus import kjv_path
    from seqmodels.forecast.series import DATA_FOLDER

    files = [(p, "a built-in series' own file") for p in sorted(DATA_FOLDER.glob("*.csv"))]
    return [*files, (kjv_path(), "the built-in corpus' own file")]
