"""Saliency benchmark: both variants against the centre-bias baseline on synthetic data.

Writes synthetic eye-tracking data (bright objects on dim noise, fixations Gaussian
around the objects plus a central component; ``train/saliency/synthetic.py``) in the
MIT1003 layout, trains ``baseline_tiny`` and ``entropy_reg_tiny`` on it through the
normal loaders, and prints each variant's held-out information gain over the fitted
centre bias (Kümmerer et al. 2015, pooled over fixations) with NSS, AUC (pysaliency's,
not the MIT AUC-Judd), CC, KL and SIM beside the centre bias' own scores. Exit 0 when both
variants beat the centre bias (IG > 0).

    python benchmarks/bench_saliency.py [--stimuli 160] [--epochs 6] [--keep DIR]

``--keep DIR`` writes the data to ``DIR/synthetic_MIT1003`` (a new folder, written whole) and
the runs to ``DIR/runs``; a DIR an earlier bench wrote to is refused, never mixed into.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from train.checkpoint import CheckpointError  # noqa: E402
from train.run_folder import LAST, RunFolderBusy, holds_checkpoint  # noqa: E402
from train.saliency.config import ConfigError, load_config, parse_config  # noqa: E402
from train.saliency.loop import NoBestEpoch, NonFiniteLoss, build_data, run  # noqa: E402
from train.saliency.records import LayoutError, StimulusFileError  # noqa: E402
from train.saliency.run_folder import RunFolderError  # noqa: E402
from train.saliency.synthetic import MAX_STIMULI, write_synthetic  # noqa: E402
from trajkit.cli import (  # noqa: E402
    MAX_EPOCHS,
    OneLineParser,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    whole_number,
)
from trajkit.lock import NewFolderError, new_folder  # noqa: E402
from trajkit.seeds import MAX_SEED  # noqa: E402

METRICS = ("info_gain", "nss", "auc", "cc", "kl", "sim")
VARIANTS = ("baseline_tiny", "entropy_reg_tiny")


class Refused(ValueError):
    """What the bench's own flags asked for cannot be done (exit 2); the message names them."""


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="bench_saliency.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stimuli", type=whole_number(1, MAX_STIMULI), default=160)
    ap.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), default=6)
    ap.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0)
    ap.add_argument("--keep", type=folder_arg, help="keep data and run folders here")
    args = ap.parse_args(argv)
    try:
        return measure(args)
    except (StimulusFileError, CheckpointError, NoBestEpoch, NonFiniteLoss) as e:
        print(f"bench_saliency.py: error: {one_line(e)}", file=sys.stderr)
        return 1
    except (Refused, LayoutError, RunFolderError, RunFolderBusy) as e:
        print(f"bench_saliency.py: error: {one_line(e)}", file=sys.stderr)
        return 2
    except NewFolderError as e:  # --keep holds a data set already: never mix two
        print(f"bench_saliency.py: error: {one_line(e)} (--keep)", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # a full disk, --keep under a file
        print(f"bench_saliency.py: error: {failed_io(e)}", file=sys.stderr)
        return 1


def measure(args) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        taken = [v for v in VARIANTS if holds_checkpoint(work / "runs" / v / LAST)]
        if taken:  # checked before the data is written: a refused run changes nothing
            raise Refused(
                f"{work / 'runs'} already holds runs of {', '.join(taken)}; give another --keep"
            )
        data = work / "synthetic_MIT1003"
        with new_folder(data) as part:  # written whole into a new folder, or not at all
            write_synthetic(part, args.stimuli, seed=args.seed)
        rows = {}
        for variant in VARIANTS:
            raw = load_config(ROOT / "configs" / "saliency" / f"{variant}.yaml").model_dump(
                mode="json"
            )
            raw["data"].update(path=str(data), max_train_stimuli=None, max_val_stimuli=None)
            raw["train"]["epochs"] = args.epochs
            cfg = parse_config(raw, variant)
            t0 = time.perf_counter()
            res = run(cfg, work / "runs" / variant, quiet=True, data=_split(cfg, args.stimuli))
            rows[variant] = (res, time.perf_counter() - t0)
    first = next(iter(rows.values()))[0]
    n = first["stimuli"]
    print(
        f"synthetic MIT1003-layout data: {args.stimuli} stimuli "
        f"(train {n['train']}, val {n['val']}, test {n['test']}), {args.epochs} epochs, "
        f"grid {cfg.data.image_size}px, centre-bias bandwidth {first['centre_bias_bandwidth']}"
    )
    print(f"{'model':18s} {'split':5s} " + " ".join(f"{m:>9s}" for m in METRICS) + "   seconds")
    ok = True
    for variant, (res, secs) in rows.items():
        for split in ("val", "test"):
            r = res[split]
            if r is None:  # the log lacks the best epoch's record (train.saliency warned)
                print(f"{variant:18s} {split:5s} no numbers: see the warning above")
                ok = False
                continue
            print(
                f"{variant:18s} {split:5s} "
                + " ".join(f"{r[m]:9.4f}" for m in METRICS)
                + f"   {secs:7.1f}"
            )
            ok &= r["info_gain"] > 0
    over_uniform = {}
    for split in ("val", "test"):
        if (r := first[split]) is None:
            continue
        cb = [0.0] + [r[f"centre_bias_{m}"] for m in METRICS[1:]]
        print(f"{'centre bias':18s} {split:5s} " + " ".join(f"{v:9.4f}" for v in cb))
        over_uniform[split] = f"{split} {r['centre_bias_info_gain_over_uniform']:+.4f}"
    print(
        "info_gain: bits per fixation over the centre bias (0 for the centre bias itself); "
        f"the centre bias over uniform: {', '.join(over_uniform.values())}"
    )
    print(
        "PASS: both variants beat the centre bias"
        if ok
        else "FAIL: a variant does not beat the centre bias"
    )
    return 0 if ok else 1


def _split(cfg, stimuli: int):  # noqa: ANN001
    try:
        return build_data(cfg)
    except ConfigError as e:  # its message names the config's val_fraction, not a flag here
        raise Refused(
            f"{stimuli} stimuli leave the train or val split empty; raise --stimuli"
        ) from e


if __name__ == "__main__":
    sys.exit(exit_on_interrupt(main, "bench_saliency stopped"))
