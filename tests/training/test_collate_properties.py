"""Hypothesis properties of batch collation: any list of samples pads into a batch that loses nothing.

For samples of any lengths (including one frame), feature sizes, face masks and audio (present, empty or
absent): every sample's frames come back unchanged in its row, padding is zeros and masked out, the face
mask never marks padding, labels and indices keep their order, and collating a permuted list permutes the
batch's rows and nothing else.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emocontext.training.datasets import collate


@st.composite
def _samples(draw):
    b = draw(st.integers(1, 5))
    d_face, d_ctx, k = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 8))
    audio = draw(st.sampled_from(["none", "some", "empty"]))
    d_audio = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    items = []
    for _ in range(b):
        t = draw(st.integers(1, 7))
        item = {
            "face": torch.from_numpy(rng.normal(size=(t, d_face)).astype(np.float32)),
            "context": torch.from_numpy(rng.normal(size=(t, d_ctx)).astype(np.float32)),
            "face_mask": torch.from_numpy(rng.random(t) < 0.7),
            "face_probs": torch.from_numpy(rng.dirichlet(np.ones(k), size=t).astype(np.float32)),
            "label": int(rng.integers(0, k)),
            "index": int(rng.integers(0, 10_000)),
        }
        if audio != "none":
            t_a = 0 if audio == "empty" else int(rng.integers(0, 9))
            item["audio"] = torch.from_numpy(rng.normal(size=(t_a, d_audio)).astype(np.float32))
        items.append(item)
    return items


_FRAME_KEYS = ("face", "context", "face_probs")


@settings(max_examples=60, deadline=None)
@given(items=_samples())
def test_property_collate_loses_nothing_and_pads_with_masked_zeros(items):
    batch = collate(items)
    lengths = [len(it["face"]) for it in items]
    t = max(lengths)
    assert batch["lengths"].tolist() == lengths
    assert batch["mask"].shape == (len(items), t)
    for j, (it, n) in enumerate(zip(items, lengths, strict=True)):
        assert batch["mask"][j].tolist() == [True] * n + [False] * (t - n)
        assert torch.equal(batch["face_mask"][j, :n], it["face_mask"])
        assert not batch["face_mask"][j, n:].any()
        for key in _FRAME_KEYS:
            assert batch[key].shape == (len(items), t, *it[key].shape[1:])
            assert batch[key].dtype == it[key].dtype
            assert torch.equal(batch[key][j, :n], it[key])
            assert not batch[key][j, n:].any()
    assert batch["label"].tolist() == [it["label"] for it in items]
    assert batch["index"].tolist() == [it["index"] for it in items]
    if "audio" in items[0]:
        a_lengths = [len(it["audio"]) for it in items]
        t_a = max(max(a_lengths), 1)
        assert batch["audio"].shape == (len(items), t_a, items[0]["audio"].shape[1])
        assert batch["audio_lengths"].tolist() == a_lengths
        for j, (it, n) in enumerate(zip(items, a_lengths, strict=True)):
            assert torch.equal(batch["audio"][j, :n], it["audio"])
            assert not batch["audio"][j, n:].any()
            assert batch["audio_mask"][j].tolist() == [True] * n + [False] * (t_a - n)
    else:
        assert "audio" not in batch and "audio_mask" not in batch


@settings(max_examples=40, deadline=None)
@given(items=_samples(), data=st.data())
def test_property_collate_commutes_with_permutation(items, data):
    order = data.draw(st.permutations(range(len(items))))
    batch, permuted = collate(items), collate([items[i] for i in order])
    assert permuted["mask"].shape == batch["mask"].shape  # the padded length does not depend on the order
    for key, value in batch.items():
        assert torch.equal(permuted[key], value[list(order)]), key
