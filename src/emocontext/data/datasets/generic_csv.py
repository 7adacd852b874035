"""The generic manifest CSV (``path,label,split,group,start,end``, optional face columns)."""

from __future__ import annotations

from pathlib import Path

from ...labels import LabelSet, get_label_set
from ..manifest import Manifest
from .registry import register_dataset


@register_dataset("csv", "generic manifest CSV: path,label,split,group,start,end")
def generic_csv(path: str | Path, label_set: LabelSet | str | None = None, *, check_files: bool = True) -> Manifest:
    """The generic manifest CSV (``path,label,split,group,start,end``): :meth:`Manifest.from_csv`.

    ``label_set`` may be a LabelSet or its name (``"ekman7"``, ...).
    """
    label_set = None if label_set is None else get_label_set(label_set)
    return Manifest.from_csv(path, label_set=label_set, check_files=check_files)
