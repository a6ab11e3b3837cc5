"""ufm: neural-collapse geometry of supervised-contrastive loss with fixed prototypes.

The science lives in small modules: :mod:`ufm.losses` (SCL with prototypes, class-averaging, CE),
:mod:`ufm.geometry` (target Grams and prototypes), :mod:`ufm.imbalance` (class-count profiles),
:mod:`ufm.analysis` (G_M, distances, NC1; the field's NC1-NC4: :func:`nc_metrics`) and :mod:`ufm.reference`
(naive losses for checking).
Every experiment runs through one engine, :func:`ufm.run` (:mod:`ufm.engine`), as the commands do.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

# name -> the module it comes from, imported on first use (PEP 562): `import ufm` stays light (no torch), so the
# `ufm` command answers a Ctrl-C while it is still starting (see ufm.cli.main)
_EXPORTS = {
    "run": "ufm.engine",
    **dict.fromkeys(("angle_errors_deg", "class_means", "geometry_summary", "gram_distance", "group_angles",
                     "mean_gram", "nc1", "nc_metrics"), "ufm.analysis"),
    **dict.fromkeys(("NCAccumulator", "stream_nc_metrics"), "ufm.nc_stream"),
    **dict.fromkeys(("check_gram", "etf_gram", "make_gram", "minority_weighted_gram", "orthogonal_gram",
                     "prototypes_from_gram"), "ufm.geometry"),
    **dict.fromkeys(("class_counts", "labels_from_counts", "long_tail_counts", "minority_mask", "step_counts"),
                    "ufm.imbalance"),
    **dict.fromkeys(("ce_fixed_classifier_loss", "class_averaging_loss", "limit_loss", "prop1_loss", "scl_loss"),
                    "ufm.losses"),
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ufm' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


try:
    __version__ = version("ufm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "NCAccumulator",
    "angle_errors_deg",
    "ce_fixed_classifier_loss",
    "check_gram",
    "class_averaging_loss",
    "class_counts",
    "class_means",
    "etf_gram",
    "geometry_summary",
    "gram_distance",
    "group_angles",
    "labels_from_counts",
    "limit_loss",
    "long_tail_counts",
    "make_gram",
    "mean_gram",
    "minority_mask",
    "minority_weighted_gram",
    "nc1",
    "nc_metrics",
    "orthogonal_gram",
    "prop1_loss",
    "prototypes_from_gram",
    "run",
    "scl_loss",
    "step_counts",
    "stream_nc_metrics",
]
