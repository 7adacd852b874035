"""Old import paths that still work: a module ``__getattr__`` that finds moved names and warns once per use."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable


def moved(old: str, names: Iterable[str], new: str) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``old`` giving each of ``names`` from module ``new`` with a DeprecationWarning.

    The new module is imported only when an old name is used, so the old module adds no import
    (and no dependency on a higher layer) to code that does not use it.
    """
    names = frozenset(names)

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} moved to {new}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__
