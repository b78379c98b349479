"""``python -m train.saliency --config FILE [--out DIR] [--data PATH] [--epochs E] [--resume] [--device D] [--quiet]``.

Trains one saliency variant into a run folder (default ``runs/saliency/<name>``); under
``torchrun --nproc_per_node N -m train.saliency ...`` with DistributedDataParallel.
Exit 0 on success, 1 on damaged data (a stimulus file, a checkpoint) or a run whose validation
information gain was never finite (no best epoch to test), 2 on bad input
(config, data folder, run folder or another process writing it, device), with one line on
stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.launcher import end_with_launcher
from train.run_folder import RunFolderBusy, what_is_kept
from train.saliency.config import ConfigError, load_config, with_overrides
from train.saliency.records import LayoutError, StimulusFileError
from trajkit.cli import (
    MAX_EPOCHS,
    OneLineParser,
    caused_by_interrupt,
    entry_point,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    load_modules,
    one_line,
    out_of_memory,
    path_arg,
    quiet_on_closed_output,
    whole_number,
)


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    end_with_launcher()  # under train.saliency.parallel: stopped, and saying so, if it is killed
    ap = OneLineParser(prog="python -m train.saliency", description=__doc__.split("\n\n")[1])
    ap.add_argument(
        "--config",
        type=path_arg,
        required=True,
        help="a YAML file or a shipped name (baseline, entropy_reg, baseline_tiny, ...)",
    )
    ap.add_argument("--out", type=folder_arg, help="run folder (default runs/saliency/<name>)")
    ap.add_argument("--data", type=path_arg, help="override data.path")
    ap.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), help="override train.epochs")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    args = ap.parse_args(argv)
    load_modules("train.saliency.loop")  # torch
    return exit_on_interrupt(lambda: _run(args), lambda: what_is_kept(args.out))


def _run(args: argparse.Namespace) -> int:
    # these load torch: here, after main's load_modules, not when the module is imported
    from train.checkpoint import CheckpointError
    from train.distributed import DeviceError, peer_stopped
    from train.saliency.loop import NoBestEpoch, NonFiniteLoss
    from train.saliency.run_folder import RunFolderError

    try:
        cfg = with_overrides(load_config(args.config), args.data, args.epochs)
        from train.saliency.loop import run

        out = args.out = args.out or Path("runs/saliency") / cfg.name  # for the stop line too
        results = run(cfg, out, resume=args.resume, quiet=args.quiet, device=args.device)
    except (StimulusFileError, CheckpointError, NoBestEpoch, NonFiniteLoss) as err:  # bad data, NaN
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1
    except (ConfigError, LayoutError, RunFolderError, RunFolderBusy, DeviceError) as err:
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 2
    except OSError as err:  # a full disk or quota, a folder gone read-only
        print(f"error: {failed_io(err)}; {what_is_kept(args.out)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:
        if caused_by_interrupt(err):
            raise
        if (lost := peer_stopped(err)) is not None:
            print(f"error: {lost}; {what_is_kept(args.out)}", file=sys.stderr)
            return 1
        if (oom := out_of_memory(err)) is None:
            raise
        print(f"error: {oom}", file=sys.stderr)
        return 1
    if not results:  # a torchrun rank other than 0: rank 0 reports
        return 0
    line = (
        f"{cfg.name}: best epoch {results['best_epoch']}/{results['epochs']}  "
        f"val IG over centre bias {results['val_info_gain']:+.4f} bit/fix"
    )
    if v := results["val"]:  # None: the log lacks the best epoch's record (a warning said so)
        line += (
            f"  NSS {v['nss']:.3f}  AUC {v.get('auc', float('nan')):.3f}  CC {v['cc']:.3f}  "
            f"KL {v['kl']:.3f}  SIM {v['sim']:.3f}"
        )
    print(f"{line}  -> {out}")
    return 0


run = entry_point(main)  # python -m train.saliency and its console script

if __name__ == "__main__":
    run()
