"""The same per-recording task on a real dask.distributed cluster on loopback (issue 5)."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("distributed")

from tests.pipeline.run.test_batch import (  # noqa: E402
    fake_task,
    fake_writer,
    folder_bytes,
    make_study,
    write_csv,
)
from toetwitch.pipeline.cli.main import main  # noqa: E402
from toetwitch.pipeline.errors import UserError  # noqa: E402
from toetwitch.pipeline.run import batch  # noqa: E402


@pytest.fixture(scope="module")
def scheduler_address():
    """One LocalCluster for the module: 2 worker processes, 1 thread each, loopback only."""
    import dask
    from distributed import LocalCluster

    # A task whose worker dies is not retried on another worker (the default retries it 3
    # times), and each worker holds one task at a time, so the crash test below costs two
    # worker restarts, not eight.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1",
            scheduler_kwargs=batch.LOOPBACK_HTTP,  # no fixed port 8787: never clashes or warns
        )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask") / "study"
    files = make_study(root)
    local = root.parent / "local"
    report = batch.run_batch(batch.plan_jobs([root]), local, workers=1)
    assert report.exit_code == 1
    return root, files, folder_bytes(local)


def test_dask_cluster_gives_the_same_outputs_as_the_local_run(study, scheduler_address, tmp_path):
    root, files, local = study
    report = batch.run_batch(batch.plan_jobs([root]), tmp_path / "dask", dask=scheduler_address)
    assert report.backend == "dask"
    assert folder_bytes(tmp_path / "dask") == local
    [fail] = report.failures
    assert fail.job.path == str(files["corrupt"]) and "abc" in fail.error
    assert report.count("ok") == len(files) - 1


def test_cli_on_a_running_scheduler_resumes_and_reports_the_corrupt_file(study, scheduler_address, tmp_path, capsys):
    root, files, local = study
    out = tmp_path / "out"
    argv = ["analyse", str(root), "--out", str(out), "--dask", scheduler_address, "--no-journal"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert str(files["corrupt"]) in captured.err and "abc" in captured.err
    assert "Traceback" not in captured.err
    assert folder_bytes(out) == local
    # Resume on the cluster: only the failed file is tried again; the rest is left alone.
    assert main([*argv, "--resume"]) == 1
    assert "up to date" in capsys.readouterr().out
    again = folder_bytes(out)
    tables = {batch.SUMMARY_CSV, batch.SUMMARY_PARQUET}
    assert {k: v for k, v in again.items() if k not in tables} == {
        k: v for k, v in local.items() if k not in tables
    }
    status = pd.read_csv(out / batch.SUMMARY_CSV).set_index("name")["status"].to_dict()
    assert status == {j.name: ("failed" if j.name == "broken" else "skipped") for j in batch.plan_jobs([root])}


def test_cli_dask_local_starts_its_own_cluster(study, tmp_path, capsys):
    root, files, local = study
    out = tmp_path / "out"
    code = main(["analyse", str(root), "--out", str(out), "--dask", "local", "--workers", "2",
                 "--no-journal", "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(files["corrupt"]) in captured.err
    assert folder_bytes(out) == local


def test_an_unreachable_scheduler_is_a_usage_error(study, tmp_path):
    root, _, _ = study
    jobs = batch.plan_jobs([root])
    with pytest.raises(UserError) as e:
        batch.run_batch(jobs, tmp_path / "out", dask="tcp://127.0.0.1:9", dask_timeout_s=1.0)
    assert e.value.exit_code == 2 and "tcp://127.0.0.1:9" in str(e.value)


def test_a_worker_that_dies_fails_only_its_file(scheduler_address, tmp_path):
    # Last in the module: the dead worker is restarted by its nanny while later tests would run.
    root = tmp_path / "in"
    for i in range(3):
        write_csv(root / f"rec{i}.csv", seed=20 + i, duration_s=3)
    (root / "crash_me.csv").write_bytes((root / "rec0.csv").read_bytes())
    report = batch.run_batch(batch.plan_jobs([root]), tmp_path / "out", dask=scheduler_address,
                             task=fake_task, writer=fake_writer)
    status = {o.job.name: (o.status, o.error) for o in report.outcomes}
    assert status["crash_me"][0] == "failed" and "stopped abruptly" in status["crash_me"][1]
    assert all(status[f"rec{i}"] == ("ok", None) for i in range(3))
