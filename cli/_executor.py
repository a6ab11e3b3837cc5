"""The ``--executor`` options (inline, local processes, SLURM) shared by ``ufm sweep``, ``ufm solve-sweep`` and
``ufm train``: every field of :class:`ufm.executors.ExecutorConfig` becomes an option in the "Executor" panel."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable

import typer

from ._config import config_parameters, refuse_typed_without_effect
from ufm.executors import ExecutorConfig

_FIELDS = [f.name for f in ExecutorConfig.__dataclass_fields__.values()]


def with_executor_options(fn: Callable) -> Callable:
    """Decorator: the command receives ``executor=ExecutorConfig(...)`` built from the ``--executor``,
    ``--workers``, ``--partition``, ... options (place it below ``with_config_options``)."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    own = [p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
           for p in sig.parameters.values() if p.name != "executor"]
    wants_ctx = "ctx" in sig.parameters
    if not wants_ctx:  # the context tells typed options from defaults (typer, or with_config_options, passes it)
        own.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    extra = config_parameters(ExecutorConfig)
    for param in extra:
        param.default.rich_help_panel = "Executor"

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        ctx = kwargs["ctx"] if wants_ctx else kwargs.pop("ctx", None)
        values = {name: kwargs.pop(name) for name in _FIELDS}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        executor = ExecutorConfig(**values)
        refuse_typed_without_effect(executor, _FIELDS, ctx)  # e.g. --time-min 60 (its default) with --executor local
        return fn(executor=executor, **kwargs)

    params = own + extra
    wrapper.__signature__ = sig.replace(parameters=params, return_annotation=None)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__
    return wrapper
