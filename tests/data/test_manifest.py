from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emocontext.data.manifest import ClipEntry, Manifest, describe_repeated, describe_skipped, gather_paths
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


def test_face_entries_survive_a_csv_round_trip(tmp_path):
    """Issue 13: to_csv dropped face_id and box, so two faces of one photo became one clip."""
    from emocontext.data.manifest import FaceEntry

    img = tmp_path / "photo.jpg"
    img.write_bytes(b"x")
    faces = [
        FaceEntry(str(img), "sad", "train", "photo.jpg", face_id=0, box=(1.5, 2.0, 30.25, 40.0), score=0.9),
        FaceEntry(str(img), "angry", "train", "photo.jpg", face_id=1, box=(50.0, 2.0, 90.0, 40.0), score=None),
    ]
    Manifest(faces, label_set=EKMAN7).to_csv(tmp_path / "m.csv")
    back = Manifest.from_csv(tmp_path / "m.csv", label_set=EKMAN7)
    assert list(back) == faces and len({e.clip_id for e in back}) == 2


def test_clip_entry_carries_face_id_and_box():
    e = ClipEntry("/v/a.jpg", "sad", face_id=3, box=(1.0, 2.0, 3.0, 4.0))
    assert e.clip_id == "/v/a.jpg#face3" and e.box == (1.0, 2.0, 3.0, 4.0)
    assert ClipEntry("/v/a.mp4", start=1.0, end=2.0, face_id=0).clip_id == "/v/a.mp4#1.000-2.000#face0"
    assert ClipEntry("/v/a.mp4").clip_id == "/v/a.mp4" and ClipEntry("/v/a.mp4").box is None


def test_csv_duplicate_rows_are_refused(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,label\na.mp4,happy\nb.mp4,sad\na.mp4,sad\n")
    with pytest.raises(ManifestError, match=r"more than once.*lines 2, 4"):
        Manifest.from_csv(tmp_path / "m.csv", check_files=False)


@pytest.mark.parametrize(
    "row, message",
    [("a.mp4,happy,x", "start is not a number"), ("a.mp4,happy,2,1", "must be after start"), (",happy", "empty path")],
)
def test_csv_bad_numbers_name_the_line(tmp_path, row, message):
    (tmp_path / "m.csv").write_text(f"path,label,start,end\n{row}\n")
    with pytest.raises(ManifestError, match=rf"line 2: .*{message}"):
        Manifest.from_csv(tmp_path / "m.csv", check_files=False)


# ------------------------------------------------------------------ properties (Hypothesis)


def test_gather_paths_lists_what_a_folder_run_skips(tmp_path):
    for name in ("v.mp4", "x/w.PNG", "a.wav", "x/b.wav", "labels.csv", ".hidden"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"0")
    files, bad, skipped, repeated = gather_paths([tmp_path, tmp_path / "missing"])
    assert sorted(f.name for f, _ in files) == ["missing", "v.mp4", "w.PNG"]
    assert bad == [] and repeated == [] and sorted(f.name for f in skipped) == ["a.wav", "b.wav", "labels.csv"]
    assert describe_skipped(skipped) == "skipped 3 files that are not video or images (.wav: 2, .csv: 1)"
    assert describe_skipped([Path("README")]) == "skipped 1 file that is not video or images (no suffix: 1)"
    assert gather_paths([tmp_path / "v.mp4"]).skipped == []  # a file named on the command line is never "skipped"


def test_csv_errors_name_lines_and_labels_are_checked_at_reading(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text('path,label\na.mp4,happy\n"gone\n.mp4",sad\na.mp4x,joy\n')
    with pytest.raises(ManifestError) as e:
        Manifest.from_csv(tmp_path / "m.csv")
    assert "line 5: unknown label 'joy'" in str(e.value)  # at reading, not when training starts
    (tmp_path / "m.csv").write_text("path,label\na.mp4,happy\ngone.mp4,sad\n")
    with pytest.raises(ManifestError, match="line 3: missing file"):
        Manifest.from_csv(tmp_path / "m.csv")  # line 1 is the header: no "row 0"
    m = Manifest.from_csv(tmp_path / "m.csv", check_files=False)
    assert m.label_set.name == "cremad6" and m.lines == [2, 3] and m.where(1) == "line 3"  # smallest fitting set
    assert m.split("none").lines == [] and Manifest(m.entries).where(0) == "row 1"
    (tmp_path / "m.csv").write_text("path,label\na.mp4,calm\na.mp4x,contempt\n")  # known, but in no one set
    with pytest.raises(ManifestError, match="fit no one known label set"):
        Manifest.from_csv(tmp_path / "m.csv", check_files=False)


def test_every_input_as_given_in_the_order_given(tmp_path, monkeypatch):
    """Relative stays relative, a link is its own row under its own name, folders are sorted, order kept."""
    monkeypatch.chdir(tmp_path)
    Path("faces").mkdir()
    Path("faces/a.jpg").write_bytes(b"x")
    Path("faces/b.jpg").symlink_to("a.jpg")  # two names of one file: two rows
    Path("z.mp4").write_bytes(b"x")
    Path("linked").symlink_to("faces")  # a symlinked folder: its files named through the link
    m = Manifest.from_paths(["z.mp4", "faces", "linked/", "missing.mp4"])
    assert [e.path for e in m] == [
        "z.mp4",
        "faces/a.jpg",
        "faces/b.jpg",
        "linked/a.jpg",
        "linked/b.jpg",
        "missing.mp4",  # kept: the decoder reports it with the others
    ]
    found = gather_paths(["faces", "z.mp4", "z.mp4", "faces/b.jpg", "./z.mp4", "empty_arg_missing/"])
    assert [str(f) for f, _ in found.files] == ["faces/a.jpg", "faces/b.jpg", "z.mp4", "empty_arg_missing"]
    assert describe_repeated(found.repeated) == [
        "z.mp4 is named 3 times: analysed once",
        "faces/b.jpg is named 2 times: analysed once",
    ]


def test_symlinked_sub_folders_are_followed_and_loops_skipped(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "x.mp4").write_bytes(b"x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "y.png").write_bytes(b"x")
    (tmp_path / "data" / "more").symlink_to(tmp_path / "other")
    (tmp_path / "data" / "sub" / "up").symlink_to(tmp_path / "data")  # a loop back to the top
    m = Manifest.from_paths([tmp_path / "data"])
    assert [Path(e.path).relative_to(tmp_path).as_posix() for e in m] == ["data/more/y.png", "data/sub/x.mp4"]
    flat = Manifest.from_paths([tmp_path / "other"], recursive=False)
    assert [Path(e.path).name for e in flat] == ["y.png"]


from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from emocontext.data.manifest import FaceEntry  # noqa: E402
from emocontext.labels import LABEL_SETS, SYNONYMS, canonical, label_mapping  # noqa: E402

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s
)
_num = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def _entries(draw):
    n = draw(st.integers(0, 6))
    out = []
    for i in range(n):
        kw = dict(
            path=f"/data/{draw(_text)}/{i}.mp4",
            label=draw(st.none() | st.sampled_from(EKMAN7.names)),
            split=draw(st.none() | st.sampled_from(["train", "val", "test"])),
            group=draw(st.none() | _text),
        )
        if draw(st.booleans()):
            start = draw(_num)
            kw.update(start=start, end=start + draw(st.floats(0.001, 100)))
        kind = draw(st.sampled_from(["clip", "face", "clip with box"]))
        if kind == "clip":
            out.append(ClipEntry(**kw))
            continue
        x1, y1 = draw(_num), draw(_num)
        box = (x1, y1, x1 + draw(st.floats(1, 500)), y1 + draw(st.floats(1, 500)))
        if kind == "face":
            out.append(FaceEntry(**kw, face_id=i, box=box, score=draw(st.none() | _num)))
        else:  # a box without a face id: ClipEntry carries both fields itself
            out.append(ClipEntry(**kw, box=box, score=draw(st.none() | _num)))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=_entries())
@example(entries=[ClipEntry("/data///0.mp4")])
def test_property_csv_round_trip_loses_nothing(tmp_path, entries):
    """Any manifest written with to_csv reads back equal: paths (as the same file: ``a//b`` reads as ``a/b``),
    labels, windows, faces, boxes, scores."""
    Manifest(entries, label_set=EKMAN7).to_csv(tmp_path / "m.csv")
    back = Manifest.from_csv(tmp_path / "m.csv", label_set=EKMAN7, check_files=False)
    assert list(back) == [dataclasses.replace(e, path=str(Path(e.path))) for e in entries]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=7), max_size=5))
def test_property_parser_never_crashes(tmp_path, cells):
    """Arbitrary cells under the manifest header: a Manifest or a ManifestError, never another exception."""
    import csv

    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "group", "start", "end", "face_id"])
        w.writerows(cells)
    try:
        m = Manifest.from_csv(tmp_path / "m.csv", check_files=False)
    except ManifestError as e:
        assert "\n" not in str(e).split(":")[0]
    else:
        assert len({e.clip_id for e in m}) == len(m)


@given(label=st.sampled_from(sorted({*SYNONYMS, *SYNONYMS.values()})), pad=st.sampled_from(["", " ", "\t"]))
def test_property_canonical_is_idempotent_and_case_blind(label, pad):
    c = canonical(pad + label.upper() + pad)
    assert c == canonical(label) == canonical(c)


@given(
    source=st.sampled_from(sorted(LABEL_SETS)),
    target=st.sampled_from(sorted(LABEL_SETS)),
)
def test_property_label_mapping_targets_stay_in_the_target_set(source, target):
    m = label_mapping(source, target)
    assert all(v is None or v in LABEL_SETS[target].names for v in m.values())
    shared = set(LABEL_SETS[source].names) & set(LABEL_SETS[target].names)
    assert all(m[n] == n for n in shared)  # shared names map to themselves
