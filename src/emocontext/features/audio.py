"""Per-frame audio features (the ``audio`` stream, ``(T_a, D_a)``) and PCA whitening.

The audio-visual LSTM (Chao et al., IJCAI-W 2016, ``models/av_lstm.py``) reads one audio feature
vector per short audio frame. Section 3.3 of the paper: "We utilize the YAAFE toolbox to extract
audio features. All the 27 features of the toolbox are extracted. The audio data is resampled to
16KHz and default parameters of each feature is utilized. Finally, 939 dimensions features are
extracted for each frame and the frame length is 1024. The audio features are then PCA whitened,
with the final 50 dimensions are kept."

What this module does, and where it differs (the whole paper: FIDELITY.md, "Audio-visual LSTM"):

* **Framing follows the paper**: 16 kHz, frames of 1024 samples (64 ms), hop 512 samples (32 ms,
  YAAFE's default ``stepSize`` for a ``blockSize`` of 1024, which the paper's "default
  parameters" imply), Hann window. :meth:`AudioFeatureSpec.speech` gives the usual speech
  framing instead (25 ms window, 10 ms hop).
* **Descriptors** (deviation: YAAFE is unmaintained and not on a package registry, so librosa
  computes a compact set instead of YAAFE's 27 features, 939 dimensions): MFCC 1..13 (YAAFE's MFCC
  defaults: 40 mel bands from 130 to 6854 Hz, first cepstral coefficient dropped,
  ``CepsIgnoreFirstCoeff=1``) and five spectral shape descriptors: centroid, bandwidth and 85 %
  roll-off (divided by the Nyquist frequency, so in [0, 1]), flatness and zero-crossing rate --
  counterparts of YAAFE features -- plus, **not** in YAAFE's default feature set, the log frame
  energy (YAAFE's ``Energy`` is the RMS, not its log; here it takes the dropped c0's place, as in
  HTK) and the deltas and delta-deltas of the log energy and MFCCs (YAAFE has them only as the
  ``Derivate`` transform, which "default parameters of each feature" do not apply). 47 values per
  frame by default (:attr:`AudioFeatureSpec.feature_names`; ``delta_order=0`` drops the deltas).
* **Frame times**: frames are centred (librosa ``center=True``): frame ``a`` is centred at
  ``a * hop / sample_rate`` seconds. A video frame sampled at time ``t`` (``video.decode``
  samples the frame on screen at ``t``) therefore lines up with audio frame ``t * frame_rate``.
* **PCA whitening** (:class:`PCAWhitening`) is fitted on the training clips' frames and keeps
  (at most) 50 components, as in the paper.
* **openSMILE** (optional, ``backend="opensmile"``): the 25 eGeMAPS v02 low-level descriptors at
  openSMILE's own 10 ms hop. openSMILE's licence is non-commercial, so it is an optional extra
  that is never installed automatically.

Entry point: :func:`audio_features` ``(path | waveform) -> (features (T_a, D_a) float32, times (T_a,)
float64 seconds)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError

__all__ = [
    "AudioFeatureSpec",
    "PAPER_AUDIO",
    "SPEECH_AUDIO",
    "EGEMAPS_AUDIO",
    "EGEMAPS_LLD_DIM",
    "audio_features",
    "PCAWhitening",
]

#: Number of eGeMAPS v02 low-level descriptors openSMILE computes per 10 ms frame.
EGEMAPS_LLD_DIM = 25

_SPECTRAL = ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness", "zcr")
_BACKENDS = ("librosa", "opensmile")


@dataclass(frozen=True)
class AudioFeatureSpec:
    """How per-frame audio features are computed; :meth:`signature` is what a feature store records.

    Attributes:
        name: identity of the feature set, e.g. ``"librosa_lld"``.
        version: bumped whenever the computation changes.
        backend: ``"librosa"`` (default) or ``"opensmile"`` (eGeMAPS v02 LLDs; the framing and
            descriptor fields below are then ignored, openSMILE uses its own).
        sample_rate: analysis rate in Hz; other inputs are resampled to it (paper: 16 kHz).
        frame_length: analysis window in samples (paper: 1024 = 64 ms at 16 kHz).
        hop_length: hop between frames in samples (YAAFE default 512 = 32 ms at 16 kHz).
        n_fft: FFT size (``None``: the next power of two >= ``frame_length``).
        n_mfcc: cepstral coefficients kept (MFCC 1..n_mfcc, or 0..n_mfcc-1 with ``drop_c0=False``).
        n_mels, fmin, fmax: mel filter bank (YAAFE defaults 40, 130 Hz, 6854 Hz).
        drop_c0: drop the 0th cepstral coefficient (YAAFE default); the log energy is always kept.
        delta_order: 0 (none), 1 (deltas) or 2 (deltas and delta-deltas) of the log energy and MFCCs.
        delta_width: frames of the delta regression window (odd, >= 3).
        spectral: append the five spectral shape descriptors.
        roll_percent: energy fraction of the roll-off frequency.
    """

    name: str = "librosa_lld"
    version: str = "1"
    backend: Literal["librosa", "opensmile"] = "librosa"
    sample_rate: int = 16000
    frame_length: int = 1024
    hop_length: int = 512
    n_fft: int | None = None
    n_mfcc: int = 13
    n_mels: int = 40
    fmin: float = 130.0
    fmax: float = 6854.0
    drop_c0: bool = True
    delta_order: int = 2
    delta_width: int = 9
    spectral: bool = True
    roll_percent: float = 0.85

    def __post_init__(self) -> None:
        if self.backend not in _BACKENDS:
            raise ConfigError(f"audio backend must be one of {_BACKENDS}, got {self.backend!r}")
        for key in ("sample_rate", "frame_length", "hop_length", "n_mels"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"AudioFeatureSpec.{key} must be a positive int, got {v!r}")
        if self.n_fft is not None and self.n_fft < self.frame_length:
            raise ConfigError(f"n_fft ({self.n_fft}) must be >= frame_length ({self.frame_length})")
        if self.n_mfcc < 1:
            raise ConfigError(f"n_mfcc must be >= 1, got {self.n_mfcc}")
        if self.delta_order not in (0, 1, 2):
            raise ConfigError(f"delta_order must be 0, 1 or 2, got {self.delta_order}")
        if self.delta_width < 3 or self.delta_width % 2 == 0:
            raise ConfigError(f"delta_width must be odd and >= 3, got {self.delta_width}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate / 2, got {self.fmin}, {self.fmax}")
        if not 0 < self.roll_percent < 1:
            raise ConfigError(f"roll_percent must be in (0, 1), got {self.roll_percent}")

    @classmethod
    def speech(cls, **overrides) -> AudioFeatureSpec:
        """The common speech framing instead of the paper's: 25 ms window, 10 ms hop (400 / 160 samples at 16 kHz)."""
        sr = overrides.pop("sample_rate", 16000)
        kw = dict(
            name="librosa_lld_speech", sample_rate=sr, frame_length=round(0.025 * sr), hop_length=round(0.01 * sr)
        )
        return cls(**{**kw, **overrides})

    @property
    def fft_size(self) -> int:
        """FFT size actually used."""
        return self.n_fft or 1 << (self.frame_length - 1).bit_length()

    @property
    def frame_rate(self) -> float:
        """Audio frames per second (librosa backend: ``sample_rate / hop_length``; openSMILE: 100)."""
        return 100.0 if self.backend == "opensmile" else self.sample_rate / self.hop_length

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Name of every column of the ``(T_a, D_a)`` features, in order."""
        if self.backend == "opensmile":
            return tuple(f"egemaps_lld_{i}" for i in range(EGEMAPS_LLD_DIM))  # real names come with the data
        first = 1 if self.drop_c0 else 0
        base = ["log_energy"] + [f"mfcc{i}" for i in range(first, first + self.n_mfcc)]
        names = list(base)
        if self.delta_order >= 1:
            names += [f"d_{n}" for n in base]
        if self.delta_order >= 2:
            names += [f"dd_{n}" for n in base]
        if self.spectral:
            names += list(_SPECTRAL)
        return tuple(names)

    @property
    def feature_dim(self) -> int:
        """``D_a``: 47 with the defaults (14 cepstral x 3 + 5 spectral); 25 for eGeMAPS."""
        return len(self.feature_names)

    def signature(self) -> dict:
        """What a feature store records: every setting that changes the numbers, plus ``feature_dim``."""
        d = asdict(self)
        if self.backend == "opensmile":
            d = {k: d[k] for k in ("name", "version", "backend", "sample_rate")}
            d["feature_set"] = "eGeMAPSv02"
        d["n_fft"] = self.fft_size if self.backend == "librosa" else None
        d["feature_dim"] = self.feature_dim
        return d


#: The paper's framing (section 3.3): 16 kHz, 1024-sample frames, 512-sample hop; 47 values a frame.
PAPER_AUDIO = AudioFeatureSpec()
#: 25 ms / 10 ms framing, same descriptors.
SPEECH_AUDIO = AudioFeatureSpec.speech()
#: openSMILE eGeMAPS v02 low-level descriptors (optional extra).
EGEMAPS_AUDIO = AudioFeatureSpec(name="opensmile_egemaps_lld", backend="opensmile")


def _as_waveform(source: str | os.PathLike | np.ndarray, sample_rate: int, spec: AudioFeatureSpec) -> np.ndarray:
    """Mono float32 ``(N,)`` at ``spec.sample_rate`` from a media file or a waveform at ``sample_rate``."""
    if isinstance(source, (str, os.PathLike)):
        from ..video.decode import read_audio

        return read_audio(Path(source), sample_rate=spec.sample_rate)
    y = np.asarray(source, dtype=np.float32)
    if y.ndim != 1:
        raise ConfigError(f"waveform must be mono (N,), got shape {y.shape}; mix channels down first")
    if not np.all(np.isfinite(y)):
        raise ConfigError("waveform contains NaN or infinite samples")
    if sample_rate != spec.sample_rate and len(y):
        import librosa

        y = librosa.resample(y, orig_sr=sample_rate, target_sr=spec.sample_rate).astype(np.float32)
    return y


def _delta(x: np.ndarray, order: int, width: int) -> np.ndarray:
    """librosa delta along time (axis 1), falling back to edge padding for clips shorter than the window."""
    import librosa

    mode = "interp" if x.shape[1] >= width else "nearest"
    return librosa.feature.delta(x, width=width, order=order, axis=1, mode=mode)


def _librosa_features(y: np.ndarray, spec: AudioFeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    sr, hop, win, n_fft = spec.sample_rate, spec.hop_length, spec.frame_length, spec.fft_size
    if len(y) == 0:
        return np.zeros((0, spec.feature_dim), np.float32), np.zeros(0)
    y64 = y.astype(np.float64)
    stft = librosa.stft(y64, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=True)
    mag = np.abs(stft)
    power = mag**2
    n_frames = mag.shape[1]

    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax)
    first = 1 if spec.drop_c0 else 0
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=1e-10, top_db=None), n_mfcc=spec.n_mfcc + first)
    mfcc = mfcc[first:]
    # Log energy of the windowed frame (mean power over the bins, from the same STFT): floor -23 = log(1e-10).
    log_energy = np.log(np.maximum(power.mean(axis=0, keepdims=True), 1e-10))
    cep = np.concatenate([log_energy, mfcc], axis=0)  # (1 + n_mfcc, T)
    blocks = [cep]
    if spec.delta_order >= 1:
        blocks.append(_delta(cep, 1, spec.delta_width))
    if spec.delta_order >= 2:
        blocks.append(_delta(cep, 2, spec.delta_width))
    if spec.spectral:
        nyquist = sr / 2
        freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
        centroid = librosa.feature.spectral_centroid(S=mag, freq=freqs) / nyquist
        bandwidth = librosa.feature.spectral_bandwidth(S=mag, freq=freqs, centroid=centroid * nyquist) / nyquist
        rolloff = librosa.feature.spectral_rolloff(S=mag, freq=freqs, roll_percent=spec.roll_percent) / nyquist
        flatness = librosa.feature.spectral_flatness(S=mag, amin=1e-10)
        zcr = librosa.feature.zero_crossing_rate(y64, frame_length=win, hop_length=hop, center=True)
        zcr = zcr[:, :n_frames]
        if zcr.shape[1] < n_frames:
            zcr = np.pad(zcr, ((0, 0), (0, n_frames - zcr.shape[1])), mode="edge")
        blocks += [centroid, bandwidth, rolloff, flatness, zcr]
    feats = np.concatenate(blocks, axis=0).T  # (T, D)
    # Silent frames give 0/0 in the spectral shape descriptors: define them as 0.
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    times = librosa.frames_to_time(np.arange(n_frames), sr=sr, hop_length=hop)
    return feats, times


def _opensmile_features(y: np.ndarray, spec: AudioFeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    try:
        opensmile = importlib.import_module("opensmile")
    except ImportError:
        raise ConfigError(
            "the 'opensmile' audio backend needs the optional opensmile package (non-commercial licence): "
            "pip install opensmile -- or use the default backend='librosa'"
        ) from None
    if len(y) == 0:
        return np.zeros((0, EGEMAPS_LLD_DIM), np.float32), np.zeros(0)
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
    )
    df = smile.process_signal(y, spec.sample_rate)
    starts = df.index.get_level_values("start").total_seconds().to_numpy()
    ends = df.index.get_level_values("end").total_seconds().to_numpy()
    feats = np.nan_to_num(df.to_numpy(dtype=np.float64)).astype(np.float32)
    return feats, (starts + ends) / 2


def audio_features(
    source: str | os.PathLike | np.ndarray,
    sample_rate: int = 16000,
    *,
    spec: AudioFeatureSpec = PAPER_AUDIO,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame audio features of a media file or a waveform.

    Args:
        source: a media file path (its first audio stream is decoded with
            :func:`emocontext.video.decode.read_audio` at ``spec.sample_rate``), or a mono waveform
            ``(N,)`` float in [-1, 1].
        sample_rate: rate in Hz of a given waveform (ignored for a path); resampled to
            ``spec.sample_rate`` when different.
        spec: the feature settings (default :data:`PAPER_AUDIO`).

    Returns:
        ``(features, times)``: ``features`` float32 ``(T_a, D_a)`` with ``D_a = spec.feature_dim``
        (column names ``spec.feature_names``), ``times`` float64 ``(T_a,)`` the centre of each
        frame in seconds from the start of the audio. Empty audio gives ``T_a = 0``.

    Raises:
        AudioDecodeError: the file has no decodable audio.
        ConfigError: bad waveform (not 1-D, NaN), or the opensmile backend without the package.
    """
    y = _as_waveform(source, sample_rate, spec)
    if spec.backend == "opensmile":
        return _opensmile_features(y, spec)
    return _librosa_features(y, spec)


class PCAWhitening:
    """PCA whitening fitted on training frames: ``z = (x - mean) @ components.T / sqrt(variance)``.

    Chao et al. 2016, section 3.3: "The audio features are then PCA whitened, with the final 50
    dimensions are kept" (and section 3.1 for the face shape, after Bengio 2012). On the training
    frames the output has zero mean and identity covariance. Fit it on the training split only.

    ``n_components`` is capped at ``min(D, number of frames)``. Components whose variance is below
    ``eps`` times the largest (numerically zero: rank-deficient data, such as a constant feature)
    are divided by ``sqrt(eps * largest variance)`` instead, so they stay finite (and near 0). The
    default ``eps`` (1e-18, a singular-value ratio of 1e-9) leaves real components alone even when
    features differ in scale by many orders of magnitude (MFCCs vs. spectral flatness).

    The state is four arrays (``mean``, ``components``, ``variance``, ``n_samples``), saved with
    :func:`numpy.savez` (:meth:`save` / :meth:`load`) or as a dict (:meth:`state_dict` /
    :meth:`from_state_dict`).
    """

    def __init__(self, n_components: int | None = 50, *, eps: float = 1e-18):
        if n_components is not None and n_components < 1:
            raise ConfigError(f"n_components must be >= 1 or None, got {n_components}")
        self.n_components = n_components
        self.eps = eps
        self.mean: np.ndarray | None = None  # (D,)
        self.components: np.ndarray | None = None  # (k, D), rows = principal axes, by decreasing variance
        self.variance: np.ndarray | None = None  # (k,)
        self.n_samples = 0

    @property
    def fitted(self) -> bool:
        return self.components is not None

    @property
    def input_dim(self) -> int:
        self._check()
        return self.components.shape[1]

    @property
    def output_dim(self) -> int:
        self._check()
        return self.components.shape[0]

    def fit(self, x: np.ndarray | Sequence[np.ndarray]) -> PCAWhitening:
        """Fit on frames ``(N, D)``, or on a list of per-clip arrays ``(T_i, D)`` (all their frames)."""
        x = _stack(x)
        n, d = x.shape
        if n < 2:
            raise ConfigError(f"PCA whitening needs at least 2 frames, got {n}")
        k = min(self.n_components or d, d, n)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s**2 / (n - 1)
        self.mean, self.components, self.variance = mean, vt[:k], var[:k]
        self.n_samples = n
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Whiten ``(..., D)`` -> float32 ``(..., k)``."""
        self._check()
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.input_dim:
            raise ConfigError(f"PCA whitening was fitted on {self.input_dim}-d features, got {x.shape[-1]}-d")
        return ((x - self.mean) @ self.components.T / self._scale()).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(_stack(x))

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Back to feature space ``(..., k) -> (..., D)`` (exact when all components are kept)."""
        self._check()
        z = np.asarray(z, dtype=np.float64)
        return ((z * self._scale()) @ self.components + self.mean).astype(np.float32)

    def _scale(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.variance, self.eps * max(float(self.variance.max()), 1e-30)))

    def _check(self) -> None:
        if not self.fitted:
            raise ConfigError("PCAWhitening is not fitted; call fit() on the training frames first")

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check()
        return {
            "mean": self.mean,
            "components": self.components,
            "variance": self.variance,
            "n_samples": np.asarray(self.n_samples),
            "eps": np.asarray(self.eps),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> PCAWhitening:
        obj = cls(int(state["components"].shape[0]), eps=float(state.get("eps", 1e-18)))
        obj.mean = np.asarray(state["mean"], dtype=np.float64)
        obj.components = np.asarray(state["components"], dtype=np.float64)
        obj.variance = np.asarray(state["variance"], dtype=np.float64)
        obj.n_samples = int(state["n_samples"])
        return obj

    def save(self, path: str | os.PathLike) -> Path:
        """Write the arrays to ``path`` (``.npz``, atomically); returns the path written."""
        import io

        from ..outputs import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **self.state_dict())
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCAWhitening:
        with np.load(Path(path)) as z:
            return cls.from_state_dict({k: z[k] for k in z.files})


def _stack(x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(x, np.ndarray):
        arr = x
    else:
        parts = [np.asarray(a) for a in x]
        if not parts:
            raise ConfigError("no frames to fit on")
        arr = np.concatenate(parts, axis=0)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ConfigError(f"expected frames of shape (N, D), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("features contain NaN or infinite values")
    return arr
