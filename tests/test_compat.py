"""The import paths from before the re-layering (issue 14) keep working: same objects, a warning where deprecated."""

from __future__ import annotations

import importlib

import pytest


def test_train_module_is_the_training_package():
    import emocontext.train as old
    from emocontext import training

    for name in old.__all__:
        assert getattr(old, name) is getattr(training, name), name


def test_adapters_module_is_the_datasets_package():
    import emocontext.data.adapters as old
    from emocontext.data import datasets

    for name in old.__all__:
        assert getattr(old, name) is getattr(datasets, name), name


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("emocontext.data.datasets", "FeatureSequenceDataset", "emocontext.training.datasets"),
        ("emocontext.data.datasets", "collate", "emocontext.training.datasets"),
        ("emocontext.data.pixels", "PixelClipDataset", "emocontext.training.pixels"),
        ("emocontext.data.pixels", "load_pixel_clips", "emocontext.training.pixels"),
    ],
)
def test_moved_torch_names_warn_and_are_the_same_objects(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"moved to {new}.{name}"):
        got = getattr(importlib.import_module(old), name)
    assert got is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        importlib.import_module(old).no_such_name  # noqa: B018


def test_faces_package_keeps_every_public_name():
    from emocontext.video import faces

    for name in faces.__all__:
        assert getattr(faces, name) is not None, name
    from emocontext.video.faces import YUNET_FILENAME, default_cache_dir, resolve_yunet_weights  # noqa: F401


def test_public_api_is_unchanged():
    import emocontext
    from emocontext.data.adapters import load_dataset as old_load_dataset
    from emocontext.data.datasets import load_dataset
    from emocontext.models import EmotionModel, create_model
    from emocontext.predict import Predictor, predict_file

    assert callable(emocontext.predict) and emocontext.Predictor is Predictor
    assert emocontext.predict_file is predict_file
    assert old_load_dataset is load_dataset
    assert isinstance(create_model("face_rnn", num_classes=7, face_dim=8), EmotionModel)
    from emocontext.train import fit as old_fit
    from emocontext.training.fit import fit

    assert old_fit is fit


def test_the_command_line_keeps_its_commands():
    import typer

    from emocontext.cli import app

    group = typer.main.get_command(app)
    assert list(group.commands) == [
        "predict",
        "extract",
        "models",
        "train",
        "evaluate",
        "compare",
        "serve",
        "version",
        "weights",
    ]
    assert list(group.commands["weights"].commands) == ["download", "list"]
