"""--backend dask: the same tasks on a Dask cluster write the same bytes as a local run."""

import pytest


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as c:
        yield c


def test_dask_run_is_byte_identical_to_a_local_run(cluster, small_dataset, tmp_path, cli, digests):
    out = tmp_path / "dask"
    args = ("--n", 24, "--out", out, "--checkpoint-every", 10, "--quiet")
    assert cli(*args, "--backend", "dask", "--scheduler", cluster.scheduler_address) == 0
    assert digests(out) == digests(small_dataset)
    assert cli("validate", out) == 0


def test_dask_needs_a_reachable_scheduler(tmp_path, cli, capsys):
    assert cli("--n", 4, "--out", tmp_path / "a", "--backend", "dask") == 2
    assert "needs --scheduler" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
