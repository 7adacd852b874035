"""Registry: names, errors, options, parameter counts (Sun et al., MEC 2017, Table I)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emocontext.errors import ConfigError
from emocontext.models import EmotionModel, Output, count_parameters, create_model, list_models, model_info
from emocontext.models import registry as reg

PAPER_MODELS = [
    "face_rnn",
    "context_rnn",
    "parallel_rnn",
    "concat_rnn",
    "caca_rnn_a",
    "caca_rnn_b",
    "cnn_2d3d",
    "ensemble",
]


def lstm_params(in_dim: int, hidden: int, layers: int) -> int:
    """PyTorch LSTM parameter count (two bias vectors per layer)."""
    total = 0
    for layer in range(layers):
        i = in_dim if layer == 0 else hidden
        total += 4 * hidden * (i + hidden) + 8 * hidden
    return total


def linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def test_list_models_has_the_paper_models():
    names = list_models()
    assert names == sorted(names)
    assert set(PAPER_MODELS) <= set(names)
    assert list_models("caca*") == ["caca_rnn_a", "caca_rnn_b"]


def test_model_info_one_line_with_paper():
    info = model_info("caca_rnn_a")
    line = str(info)
    assert "\n" not in line and "Sun et al., MEC 2017" in line and "eq. (2)-(5)" in line
    assert info.streams == ("face", "context")
    assert "attention_query" in info.options and "num_classes" not in info.options
    assert model_info("cnn_2d3d").streams == ("face_map",)


def test_unknown_model_lists_known_names():
    with pytest.raises(ConfigError, match="caca_rnn_a") as e:
        create_model("caca_rnn_z", num_classes=8)
    assert "face_rnn" in str(e.value)
    with pytest.raises(ConfigError):
        model_info("nope")


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="hidden_size"):
        create_model("face_rnn", num_classes=8, face_dim=16, hiden_size=3)
    with pytest.raises(ConfigError, match="face_dim"):
        create_model("face_rnn", num_classes=8, context_dim=16)
    with pytest.raises(ConfigError, match="context_dim"):
        create_model("caca_rnn_a", num_classes=8, face_dim=16)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("context_rnn", num_classes=0, context_dim=16)
    with pytest.raises(ConfigError, match="face_dim"):
        create_model("face_rnn", num_classes=3, face_dim=-1)
    with pytest.raises(ConfigError, match="attention_query"):
        create_model("caca_rnn_a", num_classes=3, face_dim=4, context_dim=4, attention_query="next")


def test_create_model_records_config():
    m = create_model("caca_rnn_b", num_classes=5, face_dim=12, context_dim=10, hidden_size=32)
    assert isinstance(m, EmotionModel) and m.num_classes == 5
    assert m.model_name == "caca_rnn_b"
    assert m.model_config == {"num_classes": 5, "face_dim": 12, "context_dim": 10, "hidden_size": 32}
    again = create_model(m.model_name, **m.model_config)
    again.load_state_dict(m.state_dict())


def test_register_model_rules():
    class Tiny(EmotionModel):
        streams = ("context",)

        def __init__(self, num_classes):
            super().__init__(num_classes)
            self.fc = nn.Linear(3, num_classes)

        def forward(self, batch):
            return Output(logits=self.fc(batch["context"].mean(1)))

    try:

        @reg.register_model(paper="test", streams=("context",))
        def _tiny_test_model(*, num_classes, face_dim=None, context_dim=None):
            """A tiny model for the registry test."""
            return Tiny(num_classes)

        assert "_tiny_test_model" in list_models()
        assert model_info("_tiny_test_model").description == "A tiny model for the registry test."
        m = create_model("_tiny_test_model", num_classes=2)
        assert m(dict(context=torch.zeros(1, 4, 3))).logits.shape == (1, 2)

        with pytest.raises(ConfigError, match="already registered"):

            @reg.register_model(name="_tiny_test_model")
            def other(*, num_classes, face_dim=None, context_dim=None):
                return Tiny(num_classes)

        with pytest.raises(ConfigError, match="keyword-only"):

            @reg.register_model
            def _positional(num_classes, face_dim=None, context_dim=None):
                return Tiny(num_classes)

    finally:
        reg._REGISTRY.pop("_tiny_test_model", None)
        reg._REGISTRY.pop("_positional", None)


class Variant(EmotionModel):
    """A class registered as several models: its keyword arguments are their options."""

    streams = ("face",)

    def __init__(self, *, num_classes, in_dim, mode="a", hidden=4, extra=0, needed):
        super().__init__(num_classes)
        self.fc = nn.Linear(in_dim, num_classes)
        self.mode, self.hidden, self.extra, self.needed = mode, hidden, extra, needed

    def forward(self, batch):
        return Output(logits=self.fc(batch["face"].mean(1)))


def test_register_a_class_reads_its_options():
    try:
        variant = dict(fixed={"mode": "b"}, defaults={"hidden": 9}, unused=("extra",), dims={"face_dim": "in_dim"})
        reg.register_model(Variant, name="_variant_b", paper="p", **variant)
        info = model_info("_variant_b")
        assert info.options == ("hidden", "needed")  # in_dim comes from face_dim, mode is fixed, extra unused
        assert info.streams == ("face",) and info.model_class is Variant
        assert info.description == "A class registered as several models: its keyword arguments are their options."
        m = create_model("_variant_b", num_classes=2, face_dim=3, needed=1)
        assert (m.mode, m.hidden, m.extra, m.fc.in_features) == ("b", 9, 0, 3)
        assert create_model("_variant_b", num_classes=2, face_dim=3, needed=1, hidden=5).hidden == 5
        with pytest.raises(ConfigError, match="_variant_b needs face_dim"):
            create_model("_variant_b", num_classes=2, needed=1)
        with pytest.raises(ConfigError, match="_variant_b needs needed"):
            create_model("_variant_b", num_classes=2, face_dim=3)
        for bad in ({"mode": "c"}, {"extra": 1}, {"in_dim": 3}):  # fixed, unused, a feature size: not options
            with pytest.raises(ConfigError, match="no option"):
                create_model("_variant_b", num_classes=2, face_dim=3, needed=1, **bad)
        with pytest.raises(ConfigError, match="does not take"):
            reg.register_model(Variant, name="_variant_c", fixed={"colour": 1})
        with pytest.raises(ConfigError, match="already registered"):
            reg.register_model(Output, name="_variant_b")
    finally:
        for key in ("_variant_b", "_variant_c"):
            reg._REGISTRY.pop(key, None)


def test_variants_of_the_paper_models():
    """Options come from the class (a parent's through **kwargs), minus what a variant fixes or ignores."""
    assert model_info("ffaa").options == ("embed_dim", "fusion_dim", "feature_dim", "dropout", "drop_faceless")
    assert "attention" not in model_info("caan").options and "left" not in model_info("caca_rnn_b").options
    pooled = (  # no perception options
        "audio_dim",
        "hidden_size",
        "window",
        "audio_frames_per_step",
        "align",
        "attention_dim",
        "dropout",
    )
    assert model_info("av_lstm_last").options == model_info("av_lstm_mean").options == pooled
    last = create_model("av_lstm_last", num_classes=3, face_dim=4, audio_dim=2)
    assert last.encoding == "last" and last.encoder.av_lstm.hidden_size == 64  # the baselines' 64 cells
    assert create_model("caca_rnn_b", num_classes=3, face_dim=4, context_dim=5).left_stream == "face"
    assert create_model("cnn_2d3d", num_classes=3, face_dim=4).reduce.in_channels == 4
    assert create_model("cnn_2d3d", num_classes=3, face_dim=4, in_channels=6).reduce.in_channels == 6


def test_count_parameters():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert count_parameters(m) == 3 * 4 + 4 + 4 * 2 + 2
    m[0].requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 4 * 2 + 2
    assert count_parameters(m) == 26


def test_parameter_counts_follow_table_i_architectures():
    """Counts with this project's 1280-d features and 8 classes match the architectures of section V-D.

    Paper (Table I, with its own feature sizes): Face-RNN 1.58M, Context-RNN 1.19M, Parallel-RNN
    0.86M, Concatenated-RNN 1.38M, CACA-RNN A/B 0.79M.
    """
    table = reg.parameter_table()
    D, E, K = 1280, 128, 8
    enc = linear(D, E)
    assert table["face_rnn"] == table["context_rnn"] == enc + lstm_params(E, 256, 2) + linear(256, K)
    assert table["parallel_rnn"] == 2 * enc + 2 * lstm_params(E, 128, 2) + linear(256, 128) + linear(128, K)
    assert table["concat_rnn"] == 2 * enc + lstm_params(2 * E, 256, 2) + linear(256, K)
    right_cell = 4 * 128 * (E + 128 + 128) + 8 * 128  # LSTMCell reading [x_i; c_i]
    # W_c of eq. (4)'s h(x_i, c_i, h_i) reads [c_i; h_i; x_i]
    caca = 2 * enc + lstm_params(E, 128, 2) + right_cell + linear(256 + E, 128, bias=False) + linear(128, K)
    assert table["caca_rnn_a"] == table["caca_rnn_b"] == caca
    assert table["ensemble"] == table["caca_rnn_a"] + table["cnn_2d3d"]
    # Same scale as the paper: within 15 % of Table I where the input sizes do not dominate.
    assert abs(table["caca_rnn_a"] / 0.79e6 - 1) < 0.15
    assert abs(table["parallel_rnn"] / 0.86e6 - 1) < 0.15
    assert abs(table["concat_rnn"] / 1.38e6 - 1) < 0.15
    current = create_model("caca_rnn_a", num_classes=K, face_dim=D, context_dim=D, attention_query="current")
    assert count_parameters(current) == caca - right_cell + lstm_params(E, 128, 1)


def test_vector_models_pool_feature_maps():
    """A store with spatial context maps serves the models that read pooled vectors."""
    import torch

    from emocontext.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("caca_rnn_a", num_classes=3, face_dim=4, context_dim=6).eval()
    maps = torch.randn(2, 5, 6, 3, 3)
    batch = {"face": torch.randn(2, 5, 4), "mask": torch.ones(2, 5, dtype=torch.bool)}
    a = model({**batch, "context": maps}).logits
    b = model({**batch, "context": maps.mean((-2, -1))}).logits
    torch.testing.assert_close(a, b)
