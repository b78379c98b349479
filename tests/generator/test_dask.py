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


def test_dask_writes_the_same_shards(cluster, tmp_path, cli):
    args = ("--n", 10, "--checkpoint-every", 6, "--format", "shards", "--shard-size", 4, "--quiet")
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert cli(*args, "--out", local, "--workers", 1) == 0
    assert (
        cli(*args, "--out", remote, "--backend", "dask", "--scheduler", cluster.scheduler_address)
        == 0
    )
    names = sorted(p.name for p in (local / "shards").iterdir())
    assert names == ["shard_0000.tar.zst", "shard_0004.tar.zst", "shard_0006.tar.zst"]
    for name in names:
        assert (remote / "shards" / name).read_bytes() == (local / "shards" / name).read_bytes()
