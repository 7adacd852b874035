from __future__ import annotations

import pytest

from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.errors import ManifestError
from emocontext.labels import EKMAN7


def test_from_paths_expands_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["b.mp4", "a.avi", "sub/c.jpg", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    m = Manifest.from_paths([tmp_path])
    assert [p.split("/")[-1] for p in (e.path for e in m)] == ["a.avi", "b.mp4", "c.jpg"]


def test_from_paths_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="no video or image"):
        Manifest.from_paths([tmp_path])


def test_csv_roundtrip_and_label_mapping(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label,split,group,start,end\na.mp4,Anger,train,s1,0.5,2\n")
    m = Manifest.from_csv(tmp_path / "m.csv", label_set=EKMAN7)
    e = m[0]
    assert e.label == "angry" and e.split == "train" and e.group == "s1" and (e.start, e.end) == (0.5, 2.0)
    assert m.label_ids() == [0]
    assert e.clip_id.endswith("#0.500-2.000")
    m.to_csv(tmp_path / "out.csv")
    assert Manifest.from_csv(tmp_path / "out.csv", label_set=EKMAN7)[0] == e


def test_csv_errors_list_every_bad_row(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label\na.mp4,joy\nmissing.mp4,happy\na.mp4,bored\n")
    with pytest.raises(ManifestError) as e:
        Manifest.from_csv(tmp_path / "m.csv", label_set=EKMAN7)
    msg = str(e.value)
    assert "3 bad rows" in msg and "'joy'" in msg and "'bored'" in msg and "missing.mp4" in msg


def test_csv_needs_path_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.mp4,happy\n")
    with pytest.raises(ManifestError, match="'path' column"):
        Manifest.from_csv(tmp_path / "m.csv")


def test_split_filter():
    m = Manifest([ClipEntry("a", "happy", "train"), ClipEntry("b", "sad", "test")], label_set=EKMAN7)
    assert [e.path for e in m.split("test")] == ["b"]
