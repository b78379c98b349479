"""Per-clip score files and McNemar's paired test of two runs on the same clips."""

import os

import numpy as np
import pytest

from train.trajectory.clips import clips_csv, mcnemar_p, paired, read_clips


def columns(labels, predicted, index=None):
    n = len(labels)
    index = list(range(n)) if index is None else index
    rows = np.array([index, labels, predicted, np.linspace(0.1, 1.0, n)], dtype=np.float64).T
    return rows


def test_a_clips_file_reads_back_in_index_order(tmp_path):
    rows = columns([0, 1, 2, 3], [0, 1, 1, 3], index=[7, 2, 5, 0])
    (tmp_path / "c.csv").write_bytes(clips_csv(rows))
    got = read_clips(tmp_path / "c.csv")
    assert got["index"].tolist() == [0, 2, 5, 7]
    assert got["label"].tolist() == [3, 1, 2, 0] and got["predicted"].tolist() == [3, 1, 1, 0]
    assert got["index"].dtype == np.int64
    assert got["future_error"] == pytest.approx([1.0, 0.4, 0.7, 0.1])
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "index,label,predicted,future_error"


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_clips():
    # 10 discordant clips all won by one run: 2 * 0.5**10
    assert mcnemar_p(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_p(0, 10) == mcnemar_p(10, 0)
    # 3 against 1: P(X <= 1) = 5/16, doubled
    assert mcnemar_p(3, 1) == pytest.approx(10 / 16)
    assert mcnemar_p(5, 5) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_paired_counts_the_clips_only_one_run_got_right(tmp_path):
    labels = [0, 1, 2, 3, 0, 1, 2, 3]
    a = columns(labels, [0, 1, 2, 3, 0, 1, 0, 0])  # 6 right
    b = columns(labels, [0, 0, 0, 3, 0, 1, 2, 0])  # 5 right
    (tmp_path / "a.csv").write_bytes(clips_csv(a))
    (tmp_path / "b.csv").write_bytes(clips_csv(b))
    score = paired(read_clips(tmp_path / "a.csv"), read_clips(tmp_path / "b.csv"))
    assert (score.clips, score.a_only, score.b_only) == (8, 2, 1)
    assert score.lead == pytest.approx(1 / 8) and score.p == pytest.approx(mcnemar_p(2, 1))


def test_runs_scored_on_other_clips_are_not_paired(tmp_path):
    (tmp_path / "a.csv").write_bytes(clips_csv(columns([0, 1], [0, 1])))
    (tmp_path / "b.csv").write_bytes(clips_csv(columns([0, 1], [0, 1], index=[0, 2])))
    (tmp_path / "c.csv").write_bytes(clips_csv(columns([0, 2], [0, 1])))
    a = read_clips(tmp_path / "a.csv")
    for other in ("b.csv", "c.csv"):
        with pytest.raises(ValueError, match="not scored on the same clips"):
            paired(a, read_clips(tmp_path / other))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"", "header"),
        (b"index,label,predicted\n0,1,1\n", "header"),
        (b"index,label,predicted,future_error\n0,1,1\n", "values"),
        (b"index,label,predicted,future_error\n0,1,x,0.5\n", "could not convert"),
        (b"index,label,predicted,future_error\n0,1.5,1,0.5\n", "not an integer"),
        (b"index,label,predicted,future_error\n0,nan,1,0.5\n", "not an integer"),
        (b"index,label,predicted,future_error\n0,1,1,0.5\n0,2,2,0.1\n", "repeats"),
        (b"\xff\xfe\x00binary", "clips file"),
    ],
)
def test_a_damaged_clips_file_is_one_error_naming_it(tmp_path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=expected) as e:
        read_clips(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_fifo_or_folder_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", tmp_path, tmp_path / "missing"):
        with pytest.raises(ValueError, match="not a regular file"):
            read_clips(path)
