"""--strategy: mirrored over 2 logical CPU devices and a two-process multi-worker cluster on
127.0.0.1 train exactly like the default strategy with the same global batch; only the chief
writes; resume works under each strategy; a broken cluster ends in one line."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli
from seqmodels.errors import SeqmodelsError
from seqmodels.training.distribute import _check_tf_config, cluster_config, make_distribution

WORKER = Path(__file__).with_name("distributed_worker.py")
MODEL = {"layers": 1, "units": 24, "embedding_dim": 8}
TRAIN = {"epochs": 2, "batch_size": 8, "seq_len": 16, "steps_per_epoch": 10, "seed": 0}
# measured: per-step losses agree to 2.4e-7 and weights to 1.3e-7 (float32 sums in another
# order); the bound leaves room for other CPUs and TF builds, far below what one wrong
# gradient scale or one skipped or repeated batch would change (about 1e-3 per step)
TOL = 1e-5
TIMEOUT = 300


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start(tmp: Path, name: str, env: dict | None = None, **spec) -> subprocess.Popen:
    """Start distributed_worker.py on a spec; its dump goes to tmp/name.npz."""
    spec = {"dump": str(tmp / f"{name}.npz"), **spec}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(spec))
    log = open(tmp / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, str(WORKER), str(path)], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def finish(tmp: Path, procs: dict[str, subprocess.Popen]) -> dict[str, dict]:
    """Wait for every process; their dumps by name (a failure shows its log)."""
    for name, proc in procs.items():
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            pytest.fail(f"{name} did not finish in {TIMEOUT} s")
        assert proc.returncode == 0, (tmp / f"{name}.log").read_text()[-3000:]
    return {name: dict(np.load(tmp / f"{name}.npz")) for name in procs}


def weights(dump: dict) -> list[np.ndarray]:
    return [dump[f"w{i}"] for i in range(sum(k.startswith("w") for k in dump))]


def close(a: dict, b: dict) -> None:
    assert len(a["losses"]) == len(b["losses"]) > 0
    assert np.abs(a["losses"] - b["losses"]).max() < TOL
    assert all(np.abs(x - y).max() < TOL for x, y in zip(weights(a), weights(b), strict=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    (root / "cyclic.txt").write_text("abcdefghijk\n" * 400)
    return root


@pytest.fixture(scope="module")
def baseline(corpus):
    """The default strategy: 2 epochs, then resumed to 3."""
    common = {"corpus": [str(corpus / "cyclic.txt")], "cache": str(corpus / "cache")}
    first = finish(corpus, {"default": start(corpus, "default", **common, model=MODEL,
                                             train=TRAIN, out=str(corpus / "default"))})
    again = finish(corpus, {"default3": start(corpus, "default3", **common, epochs=3,
                                              resume=str(corpus / "default"))})
    return common, first["default"], again["default3"]


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_matches_the_default_strategy(tmp_path, baseline):
    common, straight, resumed = baseline
    out = finish(tmp_path, {"mirrored": start(tmp_path, "mirrored", **common, devices=2,
                                              strategy="mirrored", model=MODEL, train=TRAIN,
                                              out=str(tmp_path / "run"))})["mirrored"]
    assert int(out["replicas"]) == 2
    close(out, straight)
    out = finish(tmp_path, {"again": start(tmp_path, "again", **common, devices=2, epochs=3,
                                           strategy="mirrored", resume=str(tmp_path / "run"))})
    assert list(out["again"]["epochs"]) == [1, 2, 3]
    close(out["again"], resumed)


@pytest.mark.slow
def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path, baseline):
    common, straight, resumed = baseline
    chief_run, worker_out = tmp_path / "run", tmp_path / "worker-out"
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir()

    def pair(ports, **spec):
        cluster = {"strategy": "multi-worker", **common, **spec,
                   "workers_spec": ",".join(f"127.0.0.1:{p}" for p in ports)}
        return {"chief": start(tmp_path, "chief", **cluster, worker_index=0),
                "worker": start(tmp_path, "worker", {"TMPDIR": str(worker_tmp)}, **cluster,
                                worker_index=1)}

    ports = free_ports(2)
    cluster = {"strategy": "multi-worker", **common, "model": MODEL, "train": TRAIN,
               "workers_spec": ",".join(f"127.0.0.1:{p}" for p in ports)}
    fresh = finish(tmp_path, {  # the worker needs no --out, and one given is never written
        "chief": start(tmp_path, "chief", **cluster, worker_index=0, out=str(chief_run)),
        "worker": start(tmp_path, "worker", {"TMPDIR": str(worker_tmp)}, **cluster,
                        worker_index=1, out=str(worker_out))})
    assert str(fresh["chief"]["path"]) == str(chief_run)
    assert str(fresh["worker"]["path"]) == "None"
    close(fresh["chief"], straight)
    for a, b in zip(weights(fresh["chief"]), weights(fresh["worker"]), strict=True):
        assert np.array_equal(a, b)  # the all-reduced update is the same on every worker
    assert not worker_out.exists() and list(worker_tmp.iterdir()) == []
    assert {"config.json", "vocab.json", "model.keras", "history.csv"} <= {
        f.name for f in chief_run.iterdir()}

    chief_files = {f: f.stat().st_mtime_ns for f in chief_run.rglob("*") if f.is_file()}
    again = finish(tmp_path, pair(free_ports(2), epochs=3, resume=str(chief_run)))
    for dump in again.values():
        assert list(dump["epochs"]) == [1, 2, 3]
        close(dump, resumed)
    for a, b in zip(weights(again["chief"]), weights(again["worker"]), strict=True):
        assert np.array_equal(a, b)
    assert list(worker_tmp.iterdir()) == []
    assert any(f.stat().st_mtime_ns != t for f, t in chief_files.items() if f.exists())


@pytest.mark.slow
def test_a_worker_whose_chief_fails_ends_with_one_line(tmp_path, corpus):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    spec = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    args = [sys.executable, "-m", "seqmodels", "train", str(corpus / "cyclic.txt"), "--layers",
            "1", "--units", "8", "--embedding-dim", "4", "--batch-size", "8", "-T", "16",
            "--epochs", "1", "--quiet", "--strategy", "multi-worker", "--workers-spec", spec]
    chief = subprocess.Popen(args + ["--worker-index", "0", "--out", str(taken)],
                             stderr=subprocess.PIPE, text=True)
    worker = subprocess.run(args + ["--worker-index", "1"], stderr=subprocess.PIPE, text=True,
                            timeout=TIMEOUT)
    _, chief_err = chief.communicate(timeout=TIMEOUT)
    assert chief.returncode == 1 and "taken already exists and is not empty" in chief_err
    assert worker.returncode == 1 and "Traceback" not in worker.stderr
    errors = [line for line in worker.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "the cluster broke off training" in errors[0]
    assert "task:0 stopped" in errors[0] and "its own output says why" in errors[0]
    assert [f.name for f in taken.iterdir()] == ["notes.txt"]


def test_workers_spec_becomes_tf_config():
    assert cluster_config("10.0.0.1:2222, node-b:2223", 1) == {
        "cluster": {"worker": ["10.0.0.1:2222", "node-b:2223"]},
        "task": {"type": "worker", "index": 1}}
    for spec, index, says in [
        ("host", 0, "is not host:port"), ("a:1,b:99999", 0, "is not host:port"),
        ("a:1,a:1", 0, "same host:port twice"), ("a:1,b:2", None, "needs worker_index"),
        ("a:1,b:2", 2, "outside cluster's 2 workers"),
    ]:
        with pytest.raises(SeqmodelsError, match=says):
            cluster_config(spec, index)


@pytest.mark.parametrize("text, says", [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'needs "cluster" and "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task type 'ps'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1"),
])
def test_bad_tf_config_is_refused(text, says):
    with pytest.raises(SeqmodelsError, match=says):
        _check_tf_config(text)


def test_strategy_settings_that_cannot_work(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SeqmodelsError, match="needs the cluster"):
        make_distribution("multi-worker")
    with pytest.raises(SeqmodelsError, match="go with strategy multi-worker"):
        make_distribution("mirrored", "a:1,b:2", 0)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": '
                                    '{"type": "worker", "index": 0}}')
    with pytest.raises(SeqmodelsError, match="both TF_CONFIG and cluster"):
        make_distribution("multi-worker", "a:1,b:2", 0)
    with pytest.raises(SeqmodelsError, match="unknown|must be one of"):
        make_distribution("parameter-server")


@pytest.mark.parametrize("args, says", [
    (["--workers-spec", "a:1,b:2", "--worker-index", "0"], "go with --strategy multi-worker"),
    (["--strategy", "multi-worker", "--workers-spec", "a:1,b:2"], "needs --worker-index"),
    (["--strategy", "mirrored", "--stateful"], "--stateful cannot be combined"),
])
def test_cli_refuses_strategy_options_that_do_not_fit(tmp_path, cyclic, args, says):
    result = CliRunner().invoke(cli, ["train", str(cyclic), "--out", str(tmp_path / "r")] + args)
    assert result.exit_code == 2 and says in result.output
    assert not (tmp_path / "r").exists()


def test_global_batch_must_split_over_the_replicas(tmp_path, cyclic, monkeypatch):
    from seqmodels.training import distribute

    class Three(distribute.Distribution):
        def __init__(self):
            super().__init__("mirrored", None, True, 3, 1)

    monkeypatch.setattr("seqmodels.training.distribute.make_distribution", lambda *a: Three())
    result = CliRunner().invoke(cli, ["train", str(cyclic), "--strategy", "mirrored",
                                      "--batch-size", "8", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "--batch-size 8 does not split evenly over 3 replicas" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_time_based_cosine_schedule_is_the_same_on_every_worker(tmp_path, corpus):
    """Each worker decayed the rate over its own clock, so the 'mirrored' weights drifted apart
    (by 1e-1 with different budgets, 4e-5 with the same one); the chief's seconds now count."""
    common = {"corpus": [str(corpus / "cyclic.txt")], "cache": str(corpus / "cache")}
    cosine = {**TRAIN, "epochs": 1000, "schedule": "cosine", "max_time": 15.0}  # time decides
    spec = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    dumps = finish(tmp_path, {
        name: start(tmp_path, name, **common, model=MODEL, train=cosine,
                    strategy="multi-worker", workers_spec=spec, worker_index=i,
                    out=str(tmp_path / "run") if i == 0 else None)
        for i, name in enumerate(["chief", "worker"])})
    assert len(dumps["chief"]["losses"]) > 10
    for a, b in zip(weights(dumps["chief"]), weights(dumps["worker"]), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_a_worker_resuming_a_stale_copy_of_the_run_is_one_line(tmp_path, corpus):
    """Its checkpoint was older than the chief's: the workers' collectives fell out of step
    and both died with TensorFlow's InternalError traceback."""
    import shutil

    common = {"corpus": [str(corpus / "cyclic.txt")], "cache": str(corpus / "cache")}
    run, stale = tmp_path / "run", tmp_path / "stale"
    finish(tmp_path, {"first": start(tmp_path, "first", **common, model=MODEL,
                                     train={**TRAIN, "epochs": 1}, out=str(run))})
    shutil.copytree(run, stale)
    finish(tmp_path, {"second": start(tmp_path, "second", **common, epochs=2,
                                      resume=str(run))})
    spec = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    args = [sys.executable, "-m", "seqmodels", "train", "--epochs", "3", "-q", "--strategy",
            "multi-worker", "--workers-spec", spec, "--cache-dir", common["cache"]]
    chief = subprocess.Popen(args + ["--resume", str(run), "--worker-index", "0"],
                             stderr=subprocess.PIPE, text=True)
    worker = subprocess.run(args + ["--resume", str(stale), "--worker-index", "1"],
                            stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    chief_err = chief.communicate(timeout=TIMEOUT)[1]
    for code, err in ((chief.returncode, chief_err), (worker.returncode, worker.stderr)):
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        assert code == 1 and "Traceback" not in err and len(errors) == 1, err
        assert "different checkpoint resumed" in errors[0], errors[0]


@pytest.mark.slow
def test_ctrl_c_on_one_worker_stops_both_as_interrupted(tmp_path, corpus):
    """The chief, which got no signal, exited 143 (SIGTERM's status) instead of 130."""
    import signal
    import time

    spec = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    args = [sys.executable, "-m", "seqmodels", "train", str(corpus / "cyclic.txt"), "--layers",
            "1", "--units", "8", "--embedding-dim", "4", "--batch-size", "8", "-T", "16",
            "--epochs", "1000", "-q", "--strategy", "multi-worker", "--workers-spec", spec,
            "--cache-dir", str(corpus / "cache")]
    chief = subprocess.Popen(args + ["--worker-index", "0", "--out", str(tmp_path / "run")],
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    worker = subprocess.Popen(args + ["--worker-index", "1"], stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT  # until the chief has trained and checkpointed
        while not (tmp_path / "run" / "history.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        worker.send_signal(signal.SIGINT)
        outcomes = [(p.wait(timeout=TIMEOUT), p.stderr.read()) for p in (chief, worker)]
    finally:
        for p in (chief, worker):
            if p.poll() is None:
                p.kill()
    for code, err in outcomes:
        assert code == 130 and "Traceback" not in err, err
        assert err.splitlines()[-1].startswith("interrupted; checkpoint saved at epoch"), err
    assert f"Resume with: seqmodels train --resume {tmp_path / 'run'}" in outcomes[0][1]
