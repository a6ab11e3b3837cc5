"""Build typer options from a config dataclass, so every config field is a command-line option.

Defaults and help come from the dataclass (``field(metadata={"help": ...})``): one source of truth.
Tuple fields become repeatable options (``--n-w 0 --n-w 100``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Callable, List, Optional

import typer

from ufm.errors import FieldError, literal

from ._common import flag
from ufm.grid import without_effect_everywhere


def _annotation(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        return List[args[0]]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        inner = [a for a in args if a is not type(None)][0]
        return Optional[_annotation(inner)]
    return tp


ANCHORS = {"prototype": True, "batch": False}  # --anchors: the one option naming the anchor convention


def anchors_option(default: bool | None) -> Any:
    """``--anchors prototype|batch``: the command-line form of every config's ``prototype_anchors`` field (a field
    defaulting to None, the config's own choice, stays None when the option is not given)."""
    return typer.Option(None if default is None else "prototype" if default else "batch", "--anchors",
                        rich_help_panel="Experiment",
                        help="anchor convention: prototype (prototype copies are anchors too, Eq. (1) as written) or "
                             "batch (only the batch's embeddings are anchors)")


def anchors_value(text: str | None) -> bool | None:
    """``prototype`` -> True, ``batch`` -> False, not given (None) -> None; anything else refused naming --anchors."""
    if text is None:
        return None
    if text not in ANCHORS:
        raise FieldError(f"{{prototype_anchors}} must be prototype or batch, got {literal(repr(text))}")
    return ANCHORS[text]


def anchors_values(texts: list[str] | None) -> tuple[bool, ...] | None:
    """The repeatable ``--anchors`` of a grid command (``--anchors prototype --anchors batch``); None when not given."""
    if not texts:
        return None
    if "both" in texts:
        raise ValueError("--anchors both is now spelled --anchors prototype --anchors batch (both conventions are the "
                         "default); give each convention as its own --anchors")
    return tuple(anchors_value(t) for t in texts)


GRID_ANCHORS_HELP = ("anchor conventions, one --anchors each: prototype (prototype copies are anchors too) and/or batch "
                     "(only the batch's embeddings are anchors); default both where some n_w > 0")


def config_parameters(cls: type, skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter with a typer Option per dataclass field (except ``skip``); the anchor convention
    (``prototype_anchors``) is ``--anchors prototype|batch``."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.name == "prototype_anchors":
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=anchors_option(f.default),
                                            annotation=Optional[str]))
            continue
        default = f.default
        name = flag(f.name)
        if hints[f.name] in (bool, Optional[bool]):
            name = f"{name}/--no-{name[2:]}"
        option = typer.Option(
            list(default) if isinstance(default, tuple) else default,
            name,
            help=f.metadata.get("help", ""),
            rich_help_panel="Experiment",
        )
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=_annotation(hints[f.name])))
    return params


CONTEXT = "_ufm_context"  # the click context typer passes in, to tell typed options from defaults


def typed(ctx: Any, name: str) -> bool:
    """Whether option ``name`` was given on the command line (or its environment variable), even at its default."""
    return ctx is not None and getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")


def refuse_typed_without_effect(config: Any, names: list[str], ctx: Any) -> None:
    """Refuse the options typed on the command line that ``config.without_effect()`` says do nothing."""
    if ctx is None or not hasattr(config, "without_effect"):
        return
    for name, reason in without_effect_everywhere([config], [n for n in names if typed(ctx, n)]).items():
        raise FieldError(f"{{{name}}} has no effect {reason}; drop it")


def typed_names(cls: type, ctx: Any, skip: tuple[str, ...] = ()) -> list[str]:
    """The fields of ``cls`` whose options were typed on the command line."""
    return [f.name for f in dataclasses.fields(cls) if f.name not in skip and typed(ctx, f.name)]


def with_config_options(cls: type, skip: tuple[str, ...] = (), refuse_typed: bool = True) -> Callable:
    """Decorator: the command receives ``config=cls(...)`` built from the generated options.

    Options typed on the command line that ``config.without_effect()`` lists are refused (one line), unless
    ``refuse_typed`` is False: then the command checks them itself (a sweep, where a grid may give them an
    effect), reading which were typed from ``ctx`` (see :func:`typed_names`)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)  # resolve string annotations in fn's own module
        own = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name not in ("config", "ctx")]
        wants_ctx = "ctx" in sig.parameters  # the command reads the context too (e.g. which options were typed)

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs.pop(CONTEXT, None)
            values = {name: kwargs.pop(name) for name in names}
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            if "prototype_anchors" in values:
                values["prototype_anchors"] = anchors_value(values["prototype_anchors"])
            config = cls(**values)  # a FieldError names its fields: user_errors writes them as flags
            if refuse_typed:
                refuse_typed_without_effect(config, names, ctx)
            if wants_ctx:
                kwargs["ctx"] = ctx
            return fn(config=config, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + config_parameters(cls, skip)
        params.append(inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
        wrapper.__signature__ = sig.replace(parameters=params, return_annotation=None)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__
        return wrapper

    return decorate
