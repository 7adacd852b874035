"""Parameter counts of the CACA-RNN family beside Sun et al.'s Table I, and the input sizes they imply.

    PYTHONPATH=src python benchmarks/table1_parameters.py

Prints a markdown table (FIDELITY.md, "CACA-RNN"): each model's count with the project's 1280-d
face and context features, with the paper's 25,088-d SqueezeNet context (face 128), and the face
or context feature size that would reproduce Table I's count for that model alone (every count is
affine in each feature size). No single pair of sizes reproduces all rows. CPU only, < 10 s.
"""

from __future__ import annotations

from emocontext.models import count_parameters, create_model

TABLE_I = {
    "face_rnn": 1.58e6,
    "context_rnn": 1.19e6,
    "parallel_rnn": 0.86e6,
    "concat_rnn": 1.38e6,
    "caca_rnn_a": 0.79e6,
    "caca_rnn_b": 0.79e6,
}


def count(name: str, face: int, context: int, **kw) -> int:
    return count_parameters(create_model(name, num_classes=8, face_dim=face, context_dim=context, **kw))


def implied(name: str, which: str, **kw) -> float:
    """The size of ``which`` (face or context) at which the count equals Table I, the other at 128."""
    base = {"face": 128, "context": 128}
    c0 = count(name, base["face"], base["context"], **kw)
    bumped = dict(base, **{which: base[which] + 1})
    slope = count(name, bumped["face"], bumped["context"], **kw) - c0
    return base[which] + (TABLE_I[name] - c0) / slope if slope else float("nan")


def main() -> None:
    print(
        "| model | Table I | ours, 1280 / 1280 | ours, face 128 / context 25,088 "
        "| face size for Table I | context size for Table I |"
    )
    print("|---|---|---|---|---|---|")
    for name, paper in TABLE_I.items():
        reads = {"face_rnn": ("face",), "context_rnn": ("context",)}.get(name, ("face", "context"))
        sizes = {w: f"{implied(name, w):,.0f}" if w in reads else "-" for w in ("face", "context")}
        print(
            f"| {name} | {paper / 1e6:.2f}M | {count(name, 1280, 1280) / 1e6:.2f}M | "
            f"{count(name, 128, 25088) / 1e6:.2f}M | {sizes['face']} | {sizes['context']} |"
        )
    vc = count("caca_rnn_a", 1280, 1280, left_layers=1, right_layers=2)
    print(f"\ncaca_rnn_a with V-C's layers (context LSTM 1 layer, face LSTM 2): {vc / 1e6:.2f}M at 1280 / 1280.")
    cur = count("caca_rnn_a", 1280, 1280, attention_query="current")
    print(f"caca_rnn_a with attention_query='current': {cur / 1e6:.2f}M at 1280 / 1280.")


if __name__ == "__main__":
    main()
