"""The dataset registry: every reader module registers itself with :func:`register_dataset`.

One record per dataset (:class:`DatasetInfo`: its reader, a one-line description and its aliases), so
adding a dataset is one module with one decorated function; :func:`load_dataset` picks it by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, EmoContextError
from ...labels import get_label_set
from ..manifest import Manifest

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "read_manifest",
    "register_dataset",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: ``reader(root, **kw) -> Manifest``, a one-line description, its other names."""

    name: str
    reader: Callable[..., Manifest]
    description: str
    aliases: tuple[str, ...] = ()


_REGISTRY: dict[str, DatasetInfo] = {}
_ALIASES: dict[str, str] = {}


def register_dataset(name: str, description: str, *, aliases: tuple[str, ...] = ()) -> Callable:
    """Decorator: register ``reader`` under ``name`` (and ``aliases``); returns the reader unchanged.

    Raises:
        ConfigError: the name or an alias is taken already.
    """

    def register(reader: Callable[..., Manifest]) -> Callable[..., Manifest]:
        taken = [n for n in (name, *aliases) if n in _REGISTRY or n in _ALIASES]
        if taken:
            raise ConfigError(f"dataset name {taken[0]!r} is registered already")
        _REGISTRY[name] = DatasetInfo(name, reader, description, tuple(aliases))
        _ALIASES.update({a: name for a in aliases})
        return reader

    return register


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in registration order."""
    return list(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """The registered dataset called ``name`` (case-insensitive, ``_`` = ``-``, aliases such as ``ck+``).

    Raises:
        ConfigError: unknown dataset name.
    """
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[key]


def load_dataset(name: str, root: str | Path, **kw) -> Manifest:
    """The manifest of dataset ``name`` (see :data:`DATASETS`) at ``root`` (for cheavd and csv: the CSV file).

    ``name`` is case-insensitive, ``_`` equals ``-`` and a few aliases are known (``caer-s``, ``cremad``,
    ``ck+``). Keyword arguments go to the reader.

    Raises:
        ConfigError: unknown dataset name.
        ManifestError: from the reader.
    """
    return dataset_info(name).reader(root, **kw)


def read_manifest(
    inputs: Sequence[str | Path],
    dataset: str | None = None,
    label_set: str | None = None,
    *,
    keep_going: bool | None = None,
) -> Manifest:
    """The clips the command line names: the root of dataset ``dataset``, a manifest CSV, or folders and files.

    ``keep_going``: missing files do not stop the reading; their clips fail one by one later and the others
    still run (``extract --keep-going``). Default: yes for folders and files (every one named as given,
    :meth:`Manifest.from_paths`), no for a manifest CSV or a dataset, where a missing file is listed with its
    line before anything runs. The labels of a CSV are checked against ``label_set``, or must all belong to
    one known set.

    Raises:
        EmoContextError: ``dataset`` with more than one input.
        ConfigError, ManifestError: unknown dataset or label set; errors of the reader or the CSV.
    """
    inputs = [Path(i) for i in inputs]
    if dataset:
        if len(inputs) != 1:
            raise EmoContextError("--dataset takes exactly one input: the dataset's root folder")
        reader = dataset_info(dataset).reader
        if keep_going and "check_files" in inspect.signature(reader).parameters:
            return reader(inputs[0], check_files=False)
        return reader(inputs[0])
    if len(inputs) == 1 and inputs[0].suffix.lower() == ".csv":
        chosen = get_label_set(label_set) if label_set else None
        return Manifest.from_csv(inputs[0], label_set=chosen, check_files=not keep_going)
    return Manifest.from_paths(inputs)


class _Descriptions(Mapping):
    """Read-only view ``name -> one-line description`` of the registry."""

    def __getitem__(self, name: str) -> str:
        return _REGISTRY[name].description

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Dataset names accepted by :func:`load_dataset`, with a one-line description each.
DATASETS: Mapping[str, str] = _Descriptions()
