"""Dataset adapters on tiny layouts built in tmp_path (empty files: nothing is decoded), plus real-data checks."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from emocontext.data.datasets import (
    DATASETS,
    FaceEntry,
    afew,
    caer,
    cheavd,
    ckplus,
    ckplus_sequences,
    crema_d,
    expw,
    generic_csv,
    load_dataset,
    map_labels,
    ravdess,
)
from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.errors import ConfigError, EmoContextError, ManifestError
from emocontext.labels import CHEAVD8, CKPLUS7, CREMAD6, EKMAN7, RAVDESS8
from tests.conftest import data_path


def touch(root: Path, *names: str) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def names(m: Manifest) -> list[str]:
    return [Path(e.path).name for e in m]


# ---------------------------------------------------------------------------------------------- CAER


def test_caer_videos_splits_and_labels(tmp_path):
    touch(
        tmp_path,
        "train/Anger/0001.avi",
        "train/Surprise/0002.avi",
        "validation/Neutral/0003.avi",
        "test/Sad/0004.avi",
        "test/Sad/notes.txt",
    )
    m = caer(tmp_path)
    assert m.label_set is EKMAN7 and m.name == "caer"
    assert [(Path(e.path).name, e.label, e.split, e.group) for e in m] == [
        ("0004.avi", "sad", "test", None),
        ("0001.avi", "angry", "train", None),
        ("0002.avi", "surprise", "train", None),
        ("0003.avi", "neutral", "val", None),
    ]
    assert all(Path(e.path).is_absolute() for e in m)


def test_caer_s_images_group_by_clip_prefix(tmp_path):
    touch(tmp_path, "train/Happy/0007_01.png", "train/Happy/0007_02.png", "test/Fear/0009.jpg")
    m = caer(tmp_path)
    assert {Path(e.path).name: e.group for e in m} == {
        "0009.jpg": None,
        "0007_01.png": "train/Happy/0007",
        "0007_02.png": "train/Happy/0007",
    }


def test_caer_unknown_emotion_folders_listed_together(tmp_path):
    touch(tmp_path, "train/Anger/1.avi", "train/Contempt/2.avi", "test/Boredom/3.avi", "test/empty_dir/x.txt")
    with pytest.raises(ManifestError, match="2 folders whose name is not an emotion") as e:
        caer(tmp_path)
    assert "Contempt" in str(e.value) and "Boredom" in str(e.value) and "empty_dir" not in str(e.value)


def test_caer_wrong_folder_says_expected_layout(tmp_path):
    touch(tmp_path, "Anger/1.avi")
    with pytest.raises(ManifestError, match=r"pass its parent.*expected root/\{train,validation,test\}"):
        caer(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(ManifestError, match="no video or image files"):
        caer(tmp_path)
    with pytest.raises(ManifestError, match="not a folder"):
        caer(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------- AFEW


def test_afew_train_val(tmp_path):
    touch(
        tmp_path,
        "Train_AFEW/Angry/000046280.avi",
        "Train_AFEW/AlignedFaces_LBPTOP_Points/Faces/000046280/1.png",
        "Val_AFEW/Happy/000149120.avi",
        "Test_AFEW/000001.avi",
    )
    m = afew(tmp_path)
    assert [(Path(e.path).name, e.label, e.split) for e in m] == [
        ("000046280.avi", "angry", "train"),
        ("000149120.avi", "happy", "val"),
    ]


def test_afew_errors(tmp_path):
    touch(tmp_path, "train/Angry/1.avi")
    with pytest.raises(ManifestError, match="no Train_AFEW or Val_AFEW.*Train_AFEW/<Emotion>"):
        afew(tmp_path)
    touch(tmp_path, "Train_AFEW/Confused/1.avi")
    with pytest.raises(ManifestError, match="Confused"):
        afew(tmp_path)


# ---------------------------------------------------------------------------------------------- CHEAVD


def test_cheavd_csv(tmp_path):
    touch(tmp_path, "videos/a.mp4", "videos/sub/b.mp4", "videos/c.mp4")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "\ufeffClip,Label,Split,Subject\na.mp4,Happy,train,s1\nsub/b.mp4,worried,Validation,s2\nc.mp4,,test,\n"
    )
    m = cheavd(csv_path, tmp_path / "videos")
    assert m.label_set is CHEAVD8
    assert [(e.label, e.split, e.group) for e in m] == [
        ("happy", "train", "s1"),
        ("worried", "val", "s2"),
        (None, "test", None),
    ]
    assert m[1].path == str(tmp_path / "videos/sub/b.mp4")


def test_cheavd_default_root_is_csv_folder_and_split_optional(tmp_path):
    touch(tmp_path, "a.mp4")
    (tmp_path / "l.csv").write_text("clip,label\na.mp4,anxious\n")
    m = load_dataset("cheavd", tmp_path / "l.csv")
    assert (m[0].label, m[0].split, m[0].group) == ("anxious", None, None)


def test_cheavd_unknown_labels_and_missing_files_in_one_error(tmp_path):
    touch(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "l.csv").write_text("clip,label\na.mp4,happy\nb.mp4,fear\nc.mp4,sad\nd.mp4,高兴\n")
    with pytest.raises(ManifestError) as e:
        cheavd(tmp_path / "l.csv")
    msg = str(e.value)
    assert "4 bad rows" in msg
    assert "line 3: unknown label 'fear'" in msg and "line 4: missing file" in msg and "line 5: unknown label" in msg
    assert "worried" in msg  # the label set is spelled out


def test_cheavd_bad_split_and_missing_column(tmp_path):
    (tmp_path / "l.csv").write_text("clip,label,split\na.mp4,happy,holdout\n")
    with pytest.raises(ManifestError, match="unknown split 'holdout'"):
        cheavd(tmp_path / "l.csv")
    (tmp_path / "l.csv").write_text("file,emotion\na.mp4,happy\n")
    with pytest.raises(ManifestError, match="columns clip, label; missing clip, label"):
        cheavd(tmp_path / "l.csv")
    with pytest.raises(ManifestError, match="no such file"):
        cheavd(tmp_path / "none.csv")


# ---------------------------------------------------------------------------------------------- RAVDESS


def test_ravdess_names_actor_group_and_modalities(tmp_path):
    touch(
        tmp_path,
        "Actor_01/01-01-01-01-01-01-01.mp4",  # full AV, neutral
        "Actor_01/02-01-02-01-01-01-01.mp4",  # video-only, calm
        "Actor_01/03-01-05-01-01-01-01.wav",  # audio-only, angry
        "Actor_12/01-02-08-02-02-01-12.mp4",  # song, surprised
        "02-01-06-01-01-02-07.mp4",  # directly in root, fearful
        "Actor_01/README.txt",
    )
    m = ravdess(tmp_path)
    assert m.label_set is RAVDESS8
    got = {Path(e.path).name: (e.label, e.group, e.split) for e in m}
    assert got == {
        "01-01-01-01-01-01-01.mp4": ("neutral", "01", None),
        "02-01-02-01-01-01-01.mp4": ("calm", "01", None),
        "01-02-08-02-02-01-12.mp4": ("surprise", "12", None),
        "02-01-06-01-01-02-07.mp4": ("fear", "07", None),
    }
    assert len(ravdess(tmp_path, modalities=("01",))) == 2
    assert len(ravdess(tmp_path, modalities=None)) == 5
    assert ravdess(tmp_path, modalities=["03"])[0].label == "angry"


def test_ravdess_bad_names_listed(tmp_path):
    touch(tmp_path, "Actor_01/01-01-09-01-01-01-01.mp4", "Actor_01/clip.mp4", "Actor_01/01-01-03-01-01-01-01.mp4")
    with pytest.raises(ManifestError, match="2 badly named files") as e:
        ravdess(tmp_path)
    assert "unknown emotion code 09" in str(e.value) and "clip.mp4" in str(e.value)


def test_ravdess_empty(tmp_path):
    touch(tmp_path, "Actor_01/03-01-05-01-01-01-01.wav")
    with pytest.raises(ManifestError, match="no RAVDESS file with modality 01 or 02.*Actor_XX"):
        ravdess(tmp_path)


# ---------------------------------------------------------------------------------------------- CREMA-D


@pytest.mark.parametrize("sub", ["VideoFlash/", ""])
def test_crema_d(tmp_path, sub):
    touch(tmp_path, f"{sub}1001_DFA_ANG_XX.flv", f"{sub}1091_IEO_HAP_HI.flv", f"{sub}1091_IEO_SAD_LO.mp4", "a.csv")
    m = crema_d(tmp_path)
    assert m.label_set is CREMAD6
    assert [(Path(e.path).name, e.label, e.group) for e in m] == [
        ("1001_DFA_ANG_XX.flv", "angry", "1001"),
        ("1091_IEO_HAP_HI.flv", "happy", "1091"),
        ("1091_IEO_SAD_LO.mp4", "sad", "1091"),
    ]


def test_crema_d_errors(tmp_path):
    with pytest.raises(ManifestError, match="no video files.*VideoFlash"):
        crema_d(tmp_path)
    touch(tmp_path, "1001_DFA_XYZ_XX.flv", "1001-DFA-ANG-XX.flv", "1001_DFA_NEU_XX.flv")
    with pytest.raises(ManifestError, match="2 badly named files") as e:
        crema_d(tmp_path)
    assert "unknown emotion code 'XYZ'" in str(e.value) and "1001-DFA-ANG-XX.flv" in str(e.value)


# ---------------------------------------------------------------------------------------------- CK+


def test_ckplus_images_and_sequences(tmp_path):
    touch(
        tmp_path,
        "anger/S010_004_00000019.png",
        "anger/S010_004_00000017.png",
        "anger/S010_004_00000018.png",
        "contempt/S011_002_00000020.png",
        "sadness/S010_006_00000005.png",
    )
    m = ckplus(tmp_path)
    assert m.label_set is CKPLUS7 and len(m) == 5
    assert Counter(e.group for e in m) == {"S010": 4, "S011": 1}
    assert {e.label for e in m} == {"angry", "contempt", "sad"}
    seqs = ckplus_sequences(tmp_path)
    assert [(s.sequence_id, s.label, s.subject, len(s.frames)) for s in seqs] == [
        ("S010_004", "angry", "S010", 3),
        ("S010_006", "sad", "S010", 1),
        ("S011_002", "contempt", "S011", 1),
    ]
    assert [Path(f).name for f in seqs[0].frames] == [f"S010_004_000000{i}.png" for i in (17, 18, 19)]
    sid, label, subject, frames = seqs[0]  # a plain tuple too
    assert sid == "S010_004"
    m = load_dataset("ckplus-sequences", tmp_path)  # one clip per sequence, its images in frame order
    assert [(Path(e.path).name, e.label, e.group, len(e.frames)) for e in m] == [
        ("S010_004", "angry", "S010", 3),
        ("S010_006", "sad", "S010", 1),
        ("S011_002", "contempt", "S011", 1),
    ]
    assert m[0].frames == tuple(seqs[0].frames) and m[0].clip_id == str(tmp_path.resolve() / "anger" / "S010_004")
    m.to_csv(tmp_path / "seq.csv")
    back = Manifest.from_csv(tmp_path / "seq.csv")
    assert back.entries == m.entries and back.label_set == CKPLUS7  # the frames column read back
    Path(seqs[0].frames[1]).unlink()
    with pytest.raises(ManifestError, match="missing file .*S010_004_00000018.png"):
        back.validate()


def test_ckplus_errors(tmp_path):
    touch(tmp_path, "anger/S010_004_00000019.png", "happy/S010_004_00000020.png")
    with pytest.raises(ManifestError, match="S010_004: angry, happy"):
        ckplus_sequences(tmp_path)
    touch(tmp_path, "happy/face.png", "bored/S1_1_1.png")
    with pytest.raises(ManifestError, match="bored"):
        ckplus(tmp_path)
    (tmp_path / "bored/S1_1_1.png").unlink()
    with pytest.raises(ManifestError, match="(?s)1 badly named files.*face.png"):
        ckplus(tmp_path)
    with pytest.raises(ManifestError, match="no images in class folders"):
        ckplus(tmp_path / "bored")


# ---------------------------------------------------------------------------------------------- ExpW

EXPW_HEADER = "image,face_id,x1,y1,x2,y2,label,face_confidence\n"


def make_expw(root: Path, labels: str, splits: str | None = "image,split\na.jpg,train\nb.jpg,test\n") -> Path:
    touch(root, "images/a.jpg", "images/b.jpg")
    (root / "labels.csv").write_text(EXPW_HEADER + labels)
    if splits is not None:
        (root / "splits.csv").write_text(splits)
    return root


def test_expw_one_entry_per_face(tmp_path):
    make_expw(tmp_path, "a.jpg,0,10,20,110,120,happy,55.5\na.jpg,1,5,5,50,50,sad,12\nb.jpg,0,1,2,3,4,fear,\n")
    m = expw(tmp_path)
    assert m.label_set is EKMAN7 and len(m) == 3
    assert all(isinstance(e, FaceEntry) and isinstance(e, ClipEntry) for e in m)
    assert [(e.label, e.split, e.group, e.face_id) for e in m] == [
        ("happy", "train", "a.jpg", 0),
        ("sad", "train", "a.jpg", 1),
        ("fear", "test", "b.jpg", 0),
    ]
    assert m[0].box == (10.0, 20.0, 110.0, 120.0) and m[0].score == 55.5 and m[2].score is None
    assert len({e.clip_id for e in m}) == 3 and m[1].clip_id.endswith("a.jpg#face1")
    boxes = {(Path(e.path).name, e.face_id): e.box for e in m}
    assert boxes[("a.jpg", 1)] == (5.0, 5.0, 50.0, 50.0)
    assert len(m.split("train")) == 2 and isinstance(m.split("train")[1], FaceEntry)


def test_expw_to_csv_keeps_clip_columns(tmp_path):
    m = expw(make_expw(tmp_path, "a.jpg,0,10,20,110,120,happy,55.5\n"))
    m.to_csv(tmp_path / "out.csv")
    assert Manifest.from_csv(tmp_path / "out.csv", label_set=EKMAN7)[0].label == "happy"


def test_expw_without_splits(tmp_path):
    m = expw(make_expw(tmp_path, "a.jpg,0,1,2,3,4,neutral,1\n", splits=None))
    assert m[0].split is None


def test_expw_row_errors_listed_together(tmp_path):
    make_expw(
        tmp_path,
        "a.jpg,0,1,2,3,4,happy,1\na.jpg,0,1,2,3,4,happy,1\nb.jpg,x,1,2,3,4,sad,1\nc.jpg,0,1,2,3,4,sad,1\n",
    )
    with pytest.raises(ManifestError, match="3 bad rows") as e:
        expw(tmp_path)
    msg = str(e.value)
    assert "listed twice" in msg and "line 4: invalid literal" in msg and "c.jpg has no row in splits.csv" in msg


def test_expw_short_row_is_reported(tmp_path):
    make_expw(tmp_path, "a.jpg,0,1,2\n")
    with pytest.raises(ManifestError, match="(?s)1 bad rows.*labels.csv line 2: could not convert"):
        expw(tmp_path)


def test_expw_unknown_label_and_missing_image(tmp_path):
    make_expw(
        tmp_path, "a.jpg,0,1,2,3,4,contempt,1\nc.jpg,0,1,2,3,4,sad,1\n", splits="image,split\na.jpg,train\nc.jpg,val\n"
    )
    with pytest.raises(ManifestError, match="2 bad rows") as e:
        expw(tmp_path)
    assert "unknown label 'contempt'" in str(e.value) and "missing file" in str(e.value)


def test_expw_layout_errors(tmp_path):
    with pytest.raises(ManifestError, match="no such file.*labels.csv"):
        expw(tmp_path)
    (tmp_path / "labels.csv").write_text("image,label\n")
    with pytest.raises(ManifestError, match="missing face_id, x1"):
        expw(tmp_path)


# ---------------------------------------------------------------------------------------------- dispatch


def test_generic_csv_and_load_dataset(tmp_path):
    touch(tmp_path, "a.mp4", "crema/1001_DFA_ANG_XX.flv")
    (tmp_path / "m.csv").write_text("path,label\na.mp4,Sadness\n")
    assert generic_csv(tmp_path / "m.csv", "ekman7")[0].label == "sad"
    assert load_dataset("csv", tmp_path / "m.csv", label_set=EKMAN7).label_set is EKMAN7
    assert len(load_dataset("CREMA_D", tmp_path / "crema")) == 1
    assert len(load_dataset("cremad", tmp_path / "crema")) == 1
    with pytest.raises(ConfigError, match="unknown dataset 'emotic'.*caer, afew"):
        load_dataset("emotic", tmp_path)
    assert set(DATASETS) == {
        "caer",
        "afew",
        "cheavd",
        "ravdess",
        "crema-d",
        "ckplus",
        "ckplus-sequences",
        "expw",
        "csv",
    }
    assert all(isinstance(v, str) and "\n" not in v for v in DATASETS.values())


def test_registry_one_record_per_dataset_and_names_are_unique(tmp_path):
    from emocontext.data.datasets import dataset_info, list_datasets, read_manifest, register_dataset

    assert list_datasets() == list(DATASETS)
    info = dataset_info("CK+")
    assert info.name == "ckplus" and info.reader is ckplus and "ck+48" in info.aliases
    with pytest.raises(ConfigError, match="'expw' is registered already"):
        register_dataset("expw", "another ExpW")(lambda root: None)
    with pytest.raises(ConfigError, match="'cremad' is registered already"):
        register_dataset("new-name", "x", aliases=("cremad",))(lambda root: None)
    assert "new-name" not in list_datasets()
    touch(tmp_path, "crema/1001_DFA_ANG_XX.flv", "clips/a.mp4")
    assert [e.label for e in read_manifest([tmp_path / "crema"], "crema-d")] == ["angry"]
    assert [Path(e.path).name for e in read_manifest([tmp_path / "clips"])] == ["a.mp4"]
    with pytest.raises(EmoContextError, match="exactly one input"):
        read_manifest([tmp_path / "crema", tmp_path / "clips"], "crema-d")


# ---------------------------------------------------------------------------------------------- mapping


def test_map_labels_defaults(tmp_path):
    touch(tmp_path, "01-01-02-01-01-01-01.mp4", "01-01-05-01-01-01-01.mp4")
    m = map_labels(ravdess(tmp_path), EKMAN7)
    assert m.label_set is EKMAN7 and [e.label for e in m] == ["neutral", "angry"]
    assert m.extra["label_mapping"]["mapping"] == {"calm": "neutral", "angry": "angry"}
    dropped = map_labels(ravdess(tmp_path), "ekman7", {"calm": None})
    assert [e.label for e in dropped] == ["angry"] and dropped.extra["label_mapping"]["dropped"] == {"calm": 1}

    touch(tmp_path / "ck", "contempt/S1_1_1.png", "happy/S1_2_1.png")
    ck = map_labels(ckplus(tmp_path / "ck"), EKMAN7)
    assert [e.label for e in ck] == ["happy"] and ck[0].group == "S1"


def test_map_labels_cheavd_needs_a_mapping(tmp_path):
    entries = [ClipEntry(f"/x/{i}.mp4", lab) for i, lab in enumerate(["happy", "worried", "anxious", "worried", None])]
    m = Manifest(entries, CHEAVD8, "cheavd")
    with pytest.raises(ManifestError, match=r"3 rows with labels .* ekman7: worried \(2\), anxious \(1\)") as e:
        map_labels(m, EKMAN7)
    assert "row 2: worried (/x/1.mp4)" in str(e.value) and "mapping=" in str(e.value)  # rows count from 1
    out = map_labels(m, EKMAN7, {"Worry": "fear", "anxious": None})
    assert [e.label for e in out] == ["happy", "fear", "fear", None]
    with pytest.raises(ManifestError, match="targets not in the set"):
        map_labels(m, EKMAN7, {"worried": "calm"})


def test_map_labels_keeps_face_entries(tmp_path):
    m = expw(make_expw(tmp_path, "a.jpg,3,1,2,3,4,happy,1\n"))
    out = map_labels(m, "cremad6")
    assert isinstance(out[0], FaceEntry) and out[0].face_id == 3 and out[0].label == "happy"


# ---------------------------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_crema_d():
    m = crema_d(data_path("videos", "crema-d"))
    assert len(m) == 6 and {e.label for e in m} == set(CREMAD6.names) and {e.group for e in m} == {"1001"}


@pytest.mark.realdata
def test_real_ravdess():
    m = ravdess(data_path("videos", "ravdess"))
    assert [(e.label, e.group) for e in m] == [("surprise", "19")]


@pytest.mark.realdata
def test_real_ckplus():
    root = data_path("ckplus48")
    m = ckplus(root)
    assert len(m) == 981 and Counter(e.label for e in m)["contempt"] == 54
    seqs = ckplus_sequences(root)
    assert len(seqs) == 327 and all(len(s.frames) == 3 for s in seqs)
    sequences = load_dataset("ckplus-sequences", root)  # the README's CK+ table: 327 sequences of 3 frames
    assert len(sequences) == 327 and {len(e.frames) for e in sequences} == {3}
    assert Counter(e.label for e in sequences) == Counter(s.label for s in seqs)
    assert len(map_labels(m, EKMAN7)) == 981 - 54


@pytest.mark.realdata
def test_real_expw():
    m = expw(data_path("expw"))
    assert len(m) == 5705 and len({e.clip_id for e in m}) == 5705
    assert set(Counter(e.label for e in m).values()) == {815}
    assert {e.split for e in m} == {"train", "val", "test"}
    # faces of one photo never straddle splits
    splits_of = defaultdict(set)
    for e in m:
        splits_of[e.group].add(e.split)
    assert all(len(s) == 1 for s in splits_of.values())
