"""Vanishing and exploding gradients, measured: per-timestep gradient norms and clipping."""

from seqmodels.diagnostics.clipping import clipping_experiment
from seqmodels.diagnostics.gradient_norms import (
    CellDiagnosis,
    Diagnosis,
    diagnose,
    diagnose_model,
    fit_decay,
    format_table,
    fresh_model,
    gradient_norms,
    plot_gradient_norms,
    reference_gradient_norms,
    sample_windows,
    spectral_radii,
    verdict,
)

__all__ = [
    "CellDiagnosis", "Diagnosis", "clipping_experiment", "diagnose", "diagnose_model",
    "fit_decay", "format_table", "fresh_model", "gradient_norms", "plot_gradient_norms",
    "reference_gradient_norms", "sample_windows", "spectral_radii", "verdict",
]
