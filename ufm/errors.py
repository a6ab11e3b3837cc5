"""One error type for bad input that names the config fields it is about.

A message is a template whose placeholders name fields: ``{ratio}`` (the field) or ``{prototype_anchors=False}`` (the
field set to a value).  ``str(err)`` reads as the library is called (``ratio``, ``prototype_anchors=False``); the
command line renders the same error with its flags (``--ratio``, ``--no-prototype-anchors``) in one place,
``ufm.cli._common.user_errors``, so no message is rewritten by string replacement.

    raise FieldError("{ratio} must be >= 1 (1 is balanced), got 0.5")

A value the user typed goes into a template through :func:`literal`, so that braces in it (a folder named
``runs/{a}``) are printed as typed and never read as a field.  A template may be built from fragments (a config's
``without_effect()`` reasons are such fragments: ``"with {n_w} = 0 (no prototypes)"``).
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["FieldError", "UncertifiedError", "library_name", "literal", "PLACEHOLDER"]

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:=([^{}]*))?\}")


_OPEN, _CLOSE = "\x0e", "\x0f"  # braces of literal text inside a template (never typed by a user)
_UNQUOTE = str.maketrans({_OPEN: "{", _CLOSE: "}"})


def literal(text: object) -> str:
    """``text`` (e.g. a path or value the user gave) for a FieldError template: its braces stay braces."""
    return str(text).replace("{", _OPEN).replace("}", _CLOSE)


def library_name(field: str, value: str | None) -> str:
    """How the library names a field (and a value for it): ``ratio``, ``prototype_anchors=False``,
    ``batching='full'`` (names quoted as Python writes them; numbers and booleans bare)."""
    if value is None:
        return field
    bare = value in ("True", "False", "None") or value.startswith(("'", '"')) or re.fullmatch(r"[-+0-9.eE]+", value)
    return f"{field}={value if bare else repr(value)}"


class FieldError(ValueError):
    """Bad input (a ``ValueError``) whose message names config fields through placeholders (see the module
    docstring).  ``fields``: the names it mentions, first the one to change."""

    def __init__(self, template: str):
        self.template = template
        self.fields = tuple(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(template)))
        super().__init__(self.render(library_name))

    def render(self, name: Callable[[str, str | None], str]) -> str:
        """The message with each placeholder written by ``name(field, value or None)``."""
        return PLACEHOLDER.sub(lambda m: name(m.group(1), m.group(2)), self.template).translate(_UNQUOTE)


class UncertifiedError(FieldError):
    """A computation that ran but cannot vouch for its answer (a solve whose entry bound exceeds what may be printed,
    or that has none): not bad input, so the command line exits with ``exit_code`` 1, with the reason and the
    options of a path that would work as placeholders."""

    exit_code = 1
