"""Emotion label sets and explicit mappings between them.

Imports nothing heavy: the manifest layer sits on top of this module and must not
pull in torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ManifestError


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of emotion names; the index of a name is its class id."""

    name: str
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, label: str) -> int:
        """Class id of ``label`` (case-insensitive); raises :class:`ManifestError` if unknown."""
        key = label.strip().lower()
        try:
            return self.names.index(key)
        except ValueError:
            raise ManifestError(
                f"unknown label {label!r} for label set {self.name} (expected one of: {', '.join(self.names)})"
            ) from None


#: The canonical Ekman-7 names used across the project (FER2013 and ExpW order).
EKMAN7 = LabelSet("ekman7", ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
#: Ekman-7 plus contempt, in that order (FER+, Barsoum et al., ICMI 2016): the face CNN's classes since
#: version 4. The first seven ids are EKMAN7's, so a 7-class answer is the argmax over ids 0-6.
EKMAN8 = LabelSet("ekman8", (*EKMAN7.names, "contempt"))
#: CHEAVD 2.0 / MEC 2017 (Sun et al., MEC 2017, section V-A).
CHEAVD8 = LabelSet("cheavd8", ("happy", "sad", "angry", "surprise", "disgust", "worried", "anxious", "neutral"))
#: CK+ with contempt (Lucey et al. 2010).
CKPLUS7 = LabelSet("ckplus7", ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"))
#: RAVDESS emotion codes 01..08 in order.
RAVDESS8 = LabelSet("ravdess8", ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"))
#: CREMA-D file-name codes ANG DIS FEA HAP NEU SAD.
CREMAD6 = LabelSet("cremad6", ("angry", "disgust", "fear", "happy", "neutral", "sad"))

LABEL_SETS = {s.name: s for s in (EKMAN7, EKMAN8, CHEAVD8, CKPLUS7, RAVDESS8, CREMAD6)}

#: Spellings used by datasets' folders and codes, mapped to the canonical names.
SYNONYMS = {
    "anger": "angry",
    "ang": "angry",
    "disgusted": "disgust",
    "dis": "disgust",
    "fearful": "fear",
    "fea": "fear",
    "happiness": "happy",
    "hap": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "neu": "neutral",
    "afraid": "fear",
    "scared": "fear",
    "worry": "worried",
    "anxiety": "anxious",
}


#: One colour per emotion (RGB, 0..255), shared by everything that draws emotions: the report's plots, the
#: annotated video, the service's page (:func:`emotion_hex`). From matplotlib's ``tab10`` / ``tab20``.
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (214, 39, 40),
    "disgust": (44, 160, 44),
    "fear": (148, 103, 189),
    "happy": (255, 170, 0),
    "sad": (31, 119, 180),
    "surprise": (23, 190, 207),
    "neutral": (127, 127, 127),
    "contempt": (140, 86, 75),
    "calm": (188, 189, 34),
    "worried": (227, 119, 194),
    "anxious": (255, 127, 14),
}
_FALLBACK_COLORS = [(57, 59, 121), (99, 121, 57), (140, 109, 49), (132, 60, 57), (123, 65, 115), (82, 84, 163)]


def emotion_color(name: str) -> tuple[int, int, int]:
    """RGB colour (0..255) of an emotion name (any spelling, :func:`canonical`); a name without its own
    colour gets a stable one from a small palette (by the sum of its UTF-8 bytes)."""
    key = canonical(name)
    if key in EMOTION_COLORS:
        return EMOTION_COLORS[key]
    return _FALLBACK_COLORS[sum(key.encode()) % len(_FALLBACK_COLORS)]


def emotion_hex(name: str) -> str:
    """:func:`emotion_color` as a CSS colour, ``"#rrggbb"``."""
    return "#{:02x}{:02x}{:02x}".format(*emotion_color(name))


def canonical(label: str) -> str:
    """Canonical lower-case name of a dataset's spelling (``"Anger"`` -> ``"angry"``)."""
    key = label.strip().lower()
    return SYNONYMS.get(key, key)


def infer_label_set(labels) -> LabelSet:
    """The smallest known label set (:data:`LABEL_SETS`) that holds every one of ``labels`` (canonical names).

    Raises:
        ManifestError: no known set holds them all.
    """
    labels = set(labels)
    fits = [s for s in LABEL_SETS.values() if labels <= set(s.names)]
    if not fits:
        raise ManifestError(
            f"labels {sorted(labels)} fit no one known label set ({', '.join(LABEL_SETS)}); pass --label-set"
        )
    return min(fits, key=len)


def get_label_set(name: str | LabelSet) -> LabelSet:
    """The label set called ``name`` (a LabelSet is returned as is); raises :class:`ManifestError` if unknown."""
    if isinstance(name, LabelSet):
        return name
    try:
        return LABEL_SETS[name.lower()]
    except KeyError:
        raise ManifestError(f"unknown label set {name!r} (known: {', '.join(LABEL_SETS)})") from None


#: Default mappings between label sets, beyond the names both sets share (which map to themselves).
#: A value of None drops the entries with that label. Source labels that are neither shared nor listed here
#: have no default equivalent: mapping them is an error unless the caller gives a mapping.
#:
#: - RAVDESS ``calm`` -> ``neutral``: calm is a low-arousal, near-neutral face in RAVDESS
#:   (Livingstone & Russo 2018); merging it keeps the data. Pass ``{"calm": None}`` to drop it instead.
#: - CK+ ``contempt`` -> dropped: Ekman-7 has no contempt, and CK+ 6/7-class protocols leave it out.
#: - EKMAN8 ``contempt`` -> dropped for Ekman-7 targets (e.g. a FER+ label on FER2013's 7 classes); to score an
#:   8-class model on a 7-class dataset, use :func:`restrict_probabilities` (contempt mapped out).
#: - CHEAVD ``worried`` and ``anxious`` have no Ekman equivalent and no default (fear is the nearest,
#:   but merging is a modelling decision): give a mapping, e.g. ``{"worried": None, "anxious": None}``.
DEFAULT_MAPPINGS: dict[tuple[str, str], dict[str, str | None]] = {
    ("ravdess8", "ekman7"): {"calm": "neutral"},
    ("ravdess8", "ekman8"): {"calm": "neutral"},
    ("ckplus7", "ekman7"): {"contempt": None},
    ("ekman8", "ekman7"): {"contempt": None},
}


def label_mapping(
    source: LabelSet | str | None,
    target: LabelSet | str,
    mapping: dict[str, str | None] | None = None,
) -> dict[str, str | None]:
    """Effective mapping from source label names to target names (None = drop).

    Built from, in increasing priority: the names both sets share (identity), :data:`DEFAULT_MAPPINGS` for
    the pair, then ``mapping`` (keys and values go through :func:`canonical`). Source names that end up
    with no entry have no equivalent in ``target``; the caller decides whether that is an error (see
    :func:`emocontext.data.manifest.map_labels`). With ``source=None`` (labels of unknown origin), only the
    target's own names and ``mapping`` are used.

    Raises:
        ManifestError: a mapping value is not a name of ``target``, or a set name is unknown.
    """
    target = get_label_set(target)
    result: dict[str, str | None] = {n: n for n in target.names}
    if source is not None:
        source = get_label_set(source)
        result = {n: n for n in source.names if n in target.names}
        result.update(DEFAULT_MAPPINGS.get((source.name, target.name), {}))
    bad = []
    for key, value in (mapping or {}).items():
        value = None if value is None else canonical(value)
        if value is not None and value not in target.names:
            bad.append(f"{key!r} -> {value!r}")
        result[canonical(key)] = value
    if bad:
        raise ManifestError(
            f"label mapping to {target.name}: targets not in the set: {', '.join(bad)} "
            f"(expected one of: {', '.join(target.names)}, or None to drop)"
        )
    return result


def restrict_probabilities(probs, source: LabelSet | str, target: LabelSet | str):
    """Probabilities over ``source``'s classes -> over ``target``'s, renormalised: the explicit way to read an
    8-class face model (:data:`EKMAN8`) on a 7-class dataset (contempt mapped out) or on CREMA-D's six.

    Args:
        probs: ``(..., len(source))`` array of probabilities (numpy or anything ``numpy.asarray`` takes).

    Returns:
        ``(..., len(target))`` float array; rows whose mass on ``target``'s classes is zero stay zero.

    Raises:
        ManifestError: ``target`` has a class that ``source`` lacks (no silent mixing of label sets), or the
            last axis of ``probs`` is not ``len(source)``.
    """
    import numpy as np

    source, target = get_label_set(source), get_label_set(target)
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[-1] != len(source):
        raise ManifestError(f"probabilities have {p.shape[-1]} columns; label set {source.name} has {len(source)}")
    missing = [n for n in target.names if n not in source.names]
    if missing:
        raise ManifestError(
            f"cannot read {source.name} probabilities as {target.name}: {source.name} has no {', '.join(missing)}"
        )
    out = p[..., [source.names.index(n) for n in target.names]]
    total = out.sum(-1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)
