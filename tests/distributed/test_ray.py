"""`extract` and `predict DIR` on a local 2-CPU Ray cluster: the same store and the same outputs as one process,
a killed worker's file retried, a file that kills its worker every time reported, a killed run resumed."""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.features.extract import extract
from emocontext.features.store import FeatureStore, Record
from tests.conftest import encode_video, numbered_frames
from tests.video.test_pipeline import SquareDetector, square_video

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

from emocontext.distributed.ray import ExtractWorker, extract_with_ray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    """One local cluster (2 CPUs, 127.0.0.1) for the whole module: starting Ray costs seconds."""
    repo = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join([repo, os.path.join(repo, "src"), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        _system_config={"worker_niceness": 0},  # as emocontext's own local cluster (see distributed.ray.cluster)
        runtime_env={"env_vars": {"PYTHONPATH": path}},  # the workers import this checkout and tests/
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    good = [square_video(d / f"v{i}.mp4", n=4 + i) for i in range(3)]
    (d / "broken.mp4").write_text("not a video")
    paths = [*good[:2], d / "broken.mp4", good[2]]
    return Manifest([ClipEntry(str(p), "happy", "train") for p in paths])


BUILD = {"detector": SquareDetector()}


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads (results are bit-identical between equal thread counts)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_threads_now() -> int:
    import torch

    return torch.get_num_threads()


def _records(root: Path) -> dict[str, Record]:
    store = FeatureStore(root)
    return {cid: store.get(cid) for cid in store.clip_ids()}


def _assert_same_store(a: Path, b: Path) -> None:
    ra, rb = _records(a), _records(b)
    assert sorted(ra) == sorted(rb) and ra
    for cid in ra:
        for name in Record.ARRAYS:
            np.testing.assert_array_equal(getattr(ra[cid], name), getattr(rb[cid], name), err_msg=f"{cid} {name}")
        assert ra[cid].meta == rb[cid].meta
    assert json.loads((a / "store.json").read_text()) == json.loads((b / "store.json").read_text())


@pytest.fixture(scope="module")
def single_store(clips, tmp_path_factory):
    from emocontext.features.extract import Extractors

    root = tmp_path_factory.mktemp("single") / "store"
    with torch_threads(1):  # as each Ray actor
        summary = extract(clips, root, Extractors.build(**BUILD))
    assert summary.done == 3 and len(summary.failed) == 1
    return root


def test_extract_on_ray_writes_the_same_store_and_resumes(clips, single_store, tmp_path):
    summary = extract_with_ray(clips, tmp_path / "store", BUILD, workers=2)
    assert summary.done == 3 and summary.skipped == 0
    assert [p for p, _ in summary.failed] == [clips[2].path] and "broken.mp4" in summary.failed[0][1]
    assert summary.times.seconds["face_cnn"] > 0  # the workers' stage times come back
    _assert_same_store(single_store, tmp_path / "store")
    assert len((tmp_path / "store" / "failures.jsonl").read_text().splitlines()) == 1
    again = extract_with_ray(clips, tmp_path / "store", BUILD, workers=2)
    assert again.skipped == 3 and again.done == 0 and len(again.failed) == 1  # the failed clip is tried again


class CrashOnce(ExtractWorker):
    """Kills its own process (SIGKILL, as the OOM killer would) the first time it reads the file named
    ``build["crash"]``, and every time it reads the one named ``build["always"]``."""

    def __init__(self, build: dict, threads: int = 1):
        build = dict(build)
        self.crash, self.always, self.marker = build.pop("crash"), build.pop("always"), Path(build.pop("marker"))
        super().__init__(build, threads)

    def run(self, entry):
        if entry.path.endswith(self.always):
            os.kill(os.getpid(), signal.SIGKILL)
        if entry.path.endswith(self.crash) and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(entry)


def test_a_killed_workers_file_is_retried_and_one_that_always_kills_it_is_reported(clips, single_store, tmp_path):
    """v1.mp4 kills its worker once (retried: same record as one process); v0.mp4 every time (reported)."""
    build = {**BUILD, "crash": "v1.mp4", "always": "v0.mp4", "marker": str(tmp_path / "killed")}
    summary = extract_with_ray(clips, tmp_path / "store", build, workers=2, retries=1, worker=CrashOnce)
    assert (tmp_path / "killed").exists()  # a worker was killed while it held v1.mp4
    assert summary.done == 2
    failed = dict(summary.failed)
    assert "worker died 2 times" in failed[clips[0].path] and "broken.mp4" in failed[clips[2].path]
    single, ray_records = _records(single_store), _records(tmp_path / "store")
    assert sorted(ray_records) == [clips[1].clip_id, clips[3].clip_id]
    for cid, record in ray_records.items():
        for name in Record.ARRAYS:
            np.testing.assert_array_equal(getattr(single[cid], name), getattr(record, name))


def test_a_run_killed_part_way_resumes_without_ray(clips, single_store, tmp_path, monkeypatch):
    real_put = FeatureStore.put
    calls = {"n": 0}

    def put_then_die(self, clip_id, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the driver is killed while writing its second record
        real_put(self, clip_id, record)

    monkeypatch.setattr(FeatureStore, "put", put_then_die)
    with pytest.raises(KeyboardInterrupt):
        extract_with_ray(clips, tmp_path / "store", BUILD, workers=2)
    monkeypatch.setattr(FeatureStore, "put", real_put)
    records = list((tmp_path / "store" / "records").iterdir())
    assert len(records) == 1 and not any(p.name.endswith(".tmp") for p in records)
    from emocontext.features.extract import Extractors

    with torch_threads(1):
        summary = extract(clips, tmp_path / "store", Extractors.build(**BUILD))
    assert summary.skipped == 1 and summary.done == 2
    _assert_same_store(single_store, tmp_path / "store")


def test_predict_folder_on_ray_writes_the_same_files(tmp_path):
    from typer.testing import CliRunner

    from emocontext.cli import app
    from emocontext.samples import sample_video

    d = tmp_path / "in"
    d.mkdir()
    (d / "face.mp4").write_bytes(Path(sample_video()).read_bytes())  # a real face: real probabilities
    encode_video(d / "noface.mp4", numbered_frames(6), fps=5)
    (d / "broken.mp4").write_text("not a video")
    outputs = {}
    for name, extra in (("one", ["--threads", "1"]), ("ray", ["--ray", "local", "--workers", "2"])):
        args = ["predict", str(d), "-q", "--max-duration", "1", *extra]
        args += ["--jsonl", str(tmp_path / f"{name}.jsonl"), "--csv", str(tmp_path / f"{name}.csv")]
        with torch_threads(torch_threads_now()):  # --threads 1 changes this process's setting: restore it
            r = CliRunner().invoke(app, args)
        assert r.exit_code == 1, r.output  # broken.mp4 failed, the others did not
        outputs[name] = r.output
    for suffix in ("jsonl", "csv"):
        assert (tmp_path / f"one.{suffix}").read_bytes() == (tmp_path / f"ray.{suffix}").read_bytes()
    rows = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["error", "ok", "ok"] and rows[1]["label"] is not None
    assert outputs["one"] == outputs["ray"]


def test_different_thread_counts_differ_only_in_the_last_float16_step(clips, single_store, tmp_path):
    """Why --threads matters for bit-identity: 2 torch threads sum the convolutions in another order."""
    from emocontext.features.extract import Extractors

    with torch_threads(2):
        extract(clips, tmp_path / "store", Extractors.build(**BUILD))
    a, b = _records(single_store), _records(tmp_path / "store")
    for cid in a:
        for name in Record.FLOATS:
            np.testing.assert_allclose(getattr(a[cid], name), getattr(b[cid], name), rtol=2e-3, atol=1e-4)
