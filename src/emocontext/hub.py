"""Finding, checking and fetching weight files: the cache, SHA-256, atomic downloads, and resolution.

The one place that knows where a :class:`~emocontext.weights.Weights` record's files are (the pattern of
timm's ``_hub.py``). :func:`resolve` looks, in order:

1. at the path the caller gives (must exist);
2. at ``$<record.env>`` when the record has an environment variable and it is set (must exist);
3. in the installed package that ships the files (``record.package`` through :mod:`importlib.resources`,
   or ``record.distribution``'s data files through :mod:`importlib.metadata`, without importing it);
4. for a downloadable record (``record.url``): in the cache, ``$EMOCONTEXT_CACHE`` or
   ``~/.cache/emocontext``, accepted only if its SHA-256 is the record's;
5. only when the caller allows it: downloaded from ``record.url`` into the cache, checked against the
   record's SHA-256 and written atomically (:func:`emocontext.outputs.atomic_path`).

Nothing is ever downloaded unless asked for (``download=True``, or ``emocontext weights download NAME``).
Every failure is a :class:`~emocontext.errors.WeightsError` naming the file and the ways to provide it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

from .errors import WeightsError
from .outputs import atomic_path
from .weights import Weights

__all__ = ["cache_dir", "sha256", "download_file", "packaged_path", "default_path", "resolve"]


def cache_dir() -> Path:
    """``$EMOCONTEXT_CACHE`` if set, else ``~/.cache/emocontext``."""
    env = os.environ.get("EMOCONTEXT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "emocontext"


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks; remembered while the file's size and time stay the same."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def download_file(
    url: str, dest: str | os.PathLike, expected_sha256: str, *, timeout: float = 60.0, offline_hint: str = ""
) -> Path:
    """Fetch ``url`` into ``dest`` if its SHA-256 is ``expected_sha256``; atomic: ``dest`` is whole or untouched.

    Raises:
        WeightsError: the download fails (the message ends with ``offline_hint``: how to provide the file by
            hand), or the file has another SHA-256 (nothing is saved).
        OutputError: ``dest`` cannot be written.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
            except OSError as e:  # URLError, HTTPError and timeouts are OSErrors
                raise WeightsError(f"cannot download {url}: {e}{offline_hint}") from e
        digest = h.hexdigest()
        if digest != expected_sha256:
            raise WeightsError(f"download of {url} has SHA-256 {digest}, expected {expected_sha256}; not saved")
    return dest


def _target(weights: Weights, folder: Path) -> Path:
    """The file of a single-file record in ``folder``, or ``folder`` itself for several files."""
    return folder / weights.files[0] if len(weights.files) == 1 else folder


def packaged_path(weights: Weights) -> Path | None:
    """Where the installed package that ships the files keeps them (the file, or the folder of several).

    None when the record names no package, or the package is not installed. The path is not checked.
    """
    if weights.package:
        try:
            folder = Path(str(resources.files(weights.package)))
        except ModuleNotFoundError:
            return None
    elif weights.distribution:
        try:
            dist = metadata.distribution(weights.distribution)
        except metadata.PackageNotFoundError:
            return None
        folder = Path(str(dist.locate_file(weights.subdir)))
    else:
        return None
    return _target(weights, folder)


def default_path(weights: Weights) -> Path | None:
    """The first place :func:`resolve` looks without a path: ``$<env>``, else the package's file (unchecked)."""
    env = os.environ.get(weights.env) if weights.env else None
    return Path(env).expanduser() if env else packaged_path(weights)


def _missing(weights: Weights, p: Path) -> list[Path]:
    if len(weights.files) == 1:
        return [] if p.is_file() else [p]
    return [p / f for f in weights.files if not (p / f).is_file()]


def _check(weights: Weights, p: Path, where: str) -> Path:
    missing = _missing(weights, p)
    if missing:
        what = where if len(weights.files) == 1 else f"{where} (missing {', '.join(m.name for m in missing)})"
        hint = f"; {weights.hint}" if weights.hint else ""
        raise WeightsError(f"{weights.title} not found at {what}{hint}")
    return p


def resolve(weights: Weights, path: str | os.PathLike | None = None, *, download: bool = False) -> Path:
    """Find the file (or the folder of the files) of ``weights`` (see the module docstring for the order).

    Args:
        weights: the record.
        path: the caller's own file (a folder for a record of several files); must exist.
        download: allow fetching a downloadable record into the cache when it is nowhere local.

    Returns:
        Path of the file, or of the folder holding all of a multi-file record's files.

    Raises:
        WeightsError: not found (the message lists the ways to provide it), the cached file fails its
            checksum, or the download fails or fails its checksum.
    """
    if path is not None:
        p = Path(path).expanduser()
        return _check(weights, p, str(p))
    env = os.environ.get(weights.env) if weights.env else None
    if env:
        p = Path(env).expanduser()
        return _check(weights, p, f"${weights.env}={p}")
    packaged = packaged_path(weights)
    if packaged is not None:
        return _check(weights, packaged, str(packaged))
    if weights.url is None:
        raise WeightsError(f"{weights.title} not found: {weights.hint or 'no installed package ships them'}")
    expected = weights.sha256[weights.filename]
    cached = cache_dir() / weights.filename
    if cached.is_file():
        digest = sha256(cached)
        if digest == expected:
            return cached
        if not download:
            raise WeightsError(
                f"cached {weights.title} {cached} have SHA-256 {digest}, expected {expected}: delete the file "
                "or fetch it again with download=True"
            )
    if download:
        where = f"; or put it anywhere and set {weights.env} to its path" if weights.env else ""
        hint = (
            f". Without network: fetch that URL on another machine and put the file at {cached} (the cache: "
            f"$EMOCONTEXT_CACHE, else ~/.cache/emocontext){where}; its SHA-256 must be {expected}"
        )
        return download_file(weights.url, cached, expected, offline_hint=hint)
    ways = "Give a path, " + (f"set {weights.env}, " if weights.env else "")
    raise WeightsError(
        f"{weights.title} ({weights.filename}) not found. {ways}put the file at {cached}, "
        f"or allow the download (download=True) from {weights.url}"
    )
