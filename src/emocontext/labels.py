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
#: CHEAVD 2.0 / MEC 2017 (Sun et al., MEC 2017, section V-A).
CHEAVD8 = LabelSet("cheavd8", ("happy", "sad", "angry", "surprise", "disgust", "worried", "anxious", "neutral"))
#: CK+ with contempt (Lucey et al. 2010).
CKPLUS7 = LabelSet("ckplus7", ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"))
#: RAVDESS emotion codes 01..08 in order.
RAVDESS8 = LabelSet("ravdess8", ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"))
#: CREMA-D file-name codes ANG DIS FEA HAP NEU SAD.
CREMAD6 = LabelSet("cremad6", ("angry", "disgust", "fear", "happy", "neutral", "sad"))

LABEL_SETS = {s.name: s for s in (EKMAN7, CHEAVD8, CKPLUS7, RAVDESS8, CREMAD6)}

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
}


def canonical(label: str) -> str:
    """Canonical lower-case name of a dataset's spelling (``"Anger"`` -> ``"angry"``)."""
    key = label.strip().lower()
    return SYNONYMS.get(key, key)


def get_label_set(name: str) -> LabelSet:
    try:
        return LABEL_SETS[name.lower()]
    except KeyError:
        raise ManifestError(f"unknown label set {name!r} (known: {', '.join(LABEL_SETS)})") from None
