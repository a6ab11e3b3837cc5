"""Input validation shared by the library's public functions.

Every check raises ``ValueError`` with a message that names the argument, what was found and what to
change; the library never lets bad input surface as an error from deep inside torch or cvxpy.
"""

from __future__ import annotations

import math

import torch

Scalar = float | int | torch.Tensor


def unit_norm_tolerance(dtype: torch.dtype) -> float:
    """Tolerance on | ||x|| - 1 | for a vector said to be unit-norm: sqrt(machine epsilon) of ``dtype``."""
    return math.sqrt(torch.finfo(dtype).eps)


def check_float_tensor(
    x: torch.Tensor, name: str, min_dim: int, require_unit_norm: bool = False, valid: torch.Tensor | None = None
) -> None:
    """``x`` is a floating tensor with at least ``min_dim`` dims, finite entries and, if asked, unit rows.

    ``valid: [..., m]`` restricts the unit-norm check to the rows that exist.  The common case (all good)
    costs one reduction; the diagnosis runs only on failure.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with torch.as_tensor")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; cast it with .double() or .float()")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dims, got shape {tuple(x.shape)}")
    x = x.detach()
    if require_unit_norm:
        # a non-finite row has a non-finite norm and fails the comparison
        tol = unit_norm_tolerance(x.dtype)
        err = (torch.linalg.vector_norm(x, dim=-1) - 1).abs()
        if valid is not None:
            err = err.masked_fill(~valid, 0)
        if bool((err <= tol).all()) and (valid is None or bool(torch.isfinite(x).all())):
            return
    elif bool(torch.isfinite(x).all()):
        return
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} has {bad} non-finite (NaN or inf) entries; remove them before computing the loss")
    raise ValueError(
        f"{name} rows must be unit-norm (the paper's setting): the worst row's norm is off by {float(err.max()):.3g} "
        f"(tolerance {tol:.2g} for {x.dtype}); normalize with torch.nn.functional.normalize(x, dim=-1) "
        "or pass require_unit_norm=False"
    )


def check_labels(y: torch.Tensor, batch_shape: torch.Size, num_classes: int | None) -> None:
    """``y`` holds integer labels in [0, num_classes) and broadcasts to ``batch_shape`` ([..., n])."""
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        got = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels y must be an integer tensor, got {got}; use torch.as_tensor(y, dtype=torch.long)")
    try:
        shape = torch.broadcast_shapes(y.shape, batch_shape)
    except RuntimeError:
        shape = None
    if shape != batch_shape or y.dim() == 0 or y.shape[-1] != batch_shape[-1]:
        raise ValueError(
            f"labels y of shape {tuple(y.shape)} do not match the embeddings: expected [n] or [..., n] "
            f"broadcastable to {tuple(batch_shape)} (one label per row of h)"
        )
    if not y.numel():
        return
    low, high = (int(v) for v in torch.aminmax(y))
    if low < 0:
        raise ValueError(f"labels must be >= 0, found {low}")
    if num_classes is not None and high >= num_classes:
        raise ValueError(
            f"label {high} is outside [0, {num_classes}): there are {num_classes} prototypes/classes; "
            "relabel the classes as 0..k-1 or pass one prototype per class"
        )


def check_positive(value: Scalar, name: str, allow_zero: bool) -> None:
    """``value`` (scalar or tensor) is finite and > 0 (or >= 0 when ``allow_zero``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value:g}")
        return
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value}")
    bad = (t < 0) if allow_zero else (t <= 0)
    if bool(bad.any()):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {t[bad].flatten()[0].item():g}")


MEMORY_ENV = "UFM_MAX_MEMORY_GB"


def available_memory_bytes(device: "torch.device | str" = "cpu") -> int:
    """Memory a new allocation can use now: free CUDA memory on a GPU, ``MemAvailable`` (else total RAM) on the CPU."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def memory_limit_bytes(max_memory_gb: float | None = None, device: "torch.device | str" = "cpu") -> tuple[int, str]:
    """(limit in bytes, where it comes from): ``max_memory_gb``, else ``$UFM_MAX_MEMORY_GB``, else the device's
    available memory."""
    import os

    for value, source in ((max_memory_gb, "max_memory_gb"), (os.environ.get(MEMORY_ENV), MEMORY_ENV)):
        if value is None or value == "":
            continue
        try:
            gb = float(value)
        except ValueError:
            raise ValueError(f"{source}={value!r} is not a number of GiB") from None
        if not math.isfinite(gb) or gb <= 0:
            raise ValueError(f"{source} must be a positive number of GiB, got {value}")
        return int(gb * 1024**3), f"the limit {gb:g} GiB set by {source}"
    device = torch.device(device)
    free = available_memory_bytes(device)
    return free, f"the {free / 1024**3:.1f} GiB available on {device.type}"


def check_memory(need_bytes: float, what: str, fix: str, max_memory_gb: float | None = None,
                 device: "torch.device | str" = "cpu") -> None:
    """Refuse, before allocating, a computation estimated to need more than the memory limit.

    ``what`` names the computation and its sizes; ``fix`` says which sizes to lower.  The message gives the
    estimate, the limit and how to override it (``max_memory_gb``; on the command line ``--max-memory-gb`` or
    ``$UFM_MAX_MEMORY_GB``).  ``fix`` may name fields as :class:`ufm.errors.FieldError` placeholders.
    """
    limit, source = memory_limit_bytes(max_memory_gb, device)
    if need_bytes > limit:
        from ufm.errors import FieldError

        raise FieldError(
            f"{what} needs about {need_bytes / 1024**3:.3g} GiB, more than {source}; {fix}, or raise the limit "
            f"({{max_memory_gb}}) if the estimate is too cautious"
        )
