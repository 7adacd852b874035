"""The prediction options of an upload and of a job: the one bridge between HTTP and :class:`PredictOptions`.

:func:`read_options` reads the form fields (:data:`FIELDS`: every option of
:class:`~emocontext.options.PredictOptions`) over the server's own defaults with
:meth:`PredictOptions.from_mapping <emocontext.options.PredictOptions.from_mapping>`: its
:class:`~emocontext.options.OptionError` becomes 422 ``bad_option``, a model or detector this server
cannot run (:mod:`.capabilities`) 422 ``unavailable``. :func:`job_options` rebuilds the record from a
job's stored ``to_dict()`` in the worker process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..options import OptionError, PredictOptions
from .capabilities import Capabilities
from .errors import ApiError

__all__ = ["FIELDS", "read_options", "job_options"]

#: Option fields accepted beside the file: the fields of :class:`PredictOptions`, in their order.
FIELDS = tuple(f.name for f in dataclasses.fields(PredictOptions))

_WHAT = {"model": "model", "detector": "face detector"}


def read_options(
    fields: Mapping[str, str], *, base: PredictOptions, capabilities: Capabilities | None = None
) -> PredictOptions:
    """The options of an upload: ``fields`` (name -> text; empty: keep) over ``base``, the server's defaults.

    Raises:
        ApiError: 422 ``bad_option`` for a bad value (the message of :class:`~emocontext.options.OptionError`);
            422 ``unavailable`` for a model or detector this server cannot run (``capabilities``; None:
            everything the library knows).
    """
    try:
        options = PredictOptions.from_mapping(fields, base=base)
    except OptionError as e:
        raise ApiError(422, "bad_option", str(e)) from None
    if capabilities is not None:
        _check_available(capabilities, "model", options.model, capabilities.models)
        _check_available(capabilities, "detector", options.detector, capabilities.detectors)
    return options


def _check_available(capabilities: Capabilities, kind: str, name: str, available: tuple[str, ...]) -> None:
    if name in available:
        return
    missing = capabilities.why_not(kind, name)
    why = f" ({missing.reason})" if missing is not None else ""
    raise ApiError(
        422,
        "unavailable",
        f"the {_WHAT[kind]} {name!r} is not available on this server{why}; choose one of {', '.join(available)}",
    )


def job_options(record: Mapping[str, object]) -> PredictOptions:
    """The options a job was accepted with, from its record (:meth:`PredictOptions.to_dict`).

    A record kept by an older server (``person`` None, no ``detect_every``) takes the library defaults for what
    it lacks, as that server did.

    Raises:
        OptionError: an unknown name or a bad value.
    """
    kept = {k: v for k, v in record.items() if v is not None or k == "max_duration"}
    return PredictOptions().replace(**kept)
