"""Every JSON file the tools write is JSON a strict reader takes: NaN and the infinities are
null (Python wrote bare ``NaN``, which JavaScript's parser, jq and Go's refuse)."""

from __future__ import annotations

import json
import math

import pytest

from trajkit.files import json_text, write_json_atomic

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_text_writes_non_finite_numbers_as_null_at_any_depth():
    record = {"a": math.nan, "b": [1.5, math.inf, {"c": -math.inf}], "d": (2, "NaN"), "e": 0.1}
    assert strict(json_text(record)) == {
        "a": None,
        "b": [1.5, None, {"c": None}],
        "d": [2, "NaN"],
        "e": 0.1,
    }


def test_write_json_atomic(tmp_path):
    write_json_atomic(tmp_path / "r.json", {"val": NON_FINITE})
    assert strict((tmp_path / "r.json").read_text()) == {"val": dict.fromkeys(NON_FINITE)}


@pytest.mark.parametrize("trainer", ["trajectory and saliency", "jepa"])
def test_the_trainers_metrics_logs(tmp_path, trainer):
    if trainer == "jepa":
        from train.jepa.run_log import RunLog

        log = RunLog(tmp_path, enabled=True)
        log.write({"epoch": 1, "rankme": math.nan, "loss": math.inf}, step=1)
        log.close()
    else:
        from train.run_folder import RunFolder

        RunFolder(tmp_path).append_metrics({"kind": "epoch", "epoch": 1, "val_nss": math.nan})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [strict(line) for line in lines]
    assert len(records) == 1 and None in records[0].values(), records
