"""``push DIR s3://bucket/prefix`` and ``pull s3://bucket/prefix DIR``: copy any folder to and from S3.

The two command lines, which every kind of folder shares: the flags, their bounds, and every
failure as one line with its exit code. The first line above is their ``--help``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trajkit.cli import one_line
from trajkit.s3_multipart import START_TIMEOUTS, TIMEOUT_SECONDS, S3Error
from trajkit.s3sync.download import pull
from trajkit.s3sync.rules import ANY_FOLDER, FolderRules
from trajkit.s3sync.store import MB, check_endpoint, make_client, parse_url
from trajkit.s3sync.upload import push

EXTRA_HINT = "push/pull needs boto3: pip install 'trajectory-suite[s3]'"
MAX_TIMEOUT = 86400  # a day; 1e308 s overflowed the clock inside urllib3
MAX_PART_MB = 5120  # S3's largest part, 5 GiB


def main(command: str, argv: list[str], prog: str, rules: FolderRules = ANY_FOLDER) -> int:
    """``push`` or ``pull`` (``command``) from the command line ``argv``; ``prog`` names it in help."""
    from trajkit.cli import OneLineParser, failed_io, first_line

    p = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    if command == "push":
        p.add_argument("dir", type=Path)
        p.add_argument("url", help="s3://bucket/prefix")
    else:
        p.add_argument("url", help="s3://bucket/prefix")
        p.add_argument("dir", type=Path)
    p.add_argument("--endpoint-url", help="any S3-compatible endpoint (default: AWS)")
    p.add_argument("--part-size-mb", type=int, default=64, help="multipart part size (5..5120)")
    p.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        help="seconds a connection may take to open or stay silent (default: %(default)g); "
        f"an object may take {START_TIMEOUTS} of them to start, then one a MB",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if not 5 <= args.part_size_mb <= MAX_PART_MB:
        print(
            f"error: --part-size-mb must be 5..{MAX_PART_MB} (S3's smallest and largest part)",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.timeout <= MAX_TIMEOUT:
        print(
            f"error: --timeout must be a positive number of seconds up to {MAX_TIMEOUT}, "
            f"got {args.timeout:g}",
            file=sys.stderr,
        )
        return 2
    try:
        parse_url(args.url)
        check_endpoint(args.endpoint_url)
    except S3Error as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    try:
        import boto3  # noqa: F401 - the optional extra, named if missing
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )
    except ImportError:
        print(f"error: {EXTRA_HINT}", file=sys.stderr)
        return 2
    try:
        client = make_client(args.endpoint_url, args.timeout)
        if command == "push":
            s = push(args.dir, args.url, client, args.part_size_mb * MB, args.quiet, rules)
            for warning in s.get("warnings", []):
                print(f"warning: {one_line(warning)}", file=sys.stderr)
            print(
                f"pushed {args.dir} to {args.url}: {s['uploaded']} files uploaded "
                f"({s['bytes'] / 1e6:.1f} MB), {s['skipped']} already there with the same bytes"
                + (
                    f"; {s['parts_reused']} parts of interrupted uploads kept"
                    if s["parts_reused"]
                    else ""
                )
            )
            return 0
        s = pull(args.url, args.dir, client, args.part_size_mb * MB, args.quiet, rules)
    except S3Error as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except (Boto3Error, BotoCoreError, ClientError) as e:
        # s3transfer gives up on a body that stalls with its own error, the timeout behind it
        timed_out = (ConnectTimeoutError, ReadTimeoutError)
        waited = (
            f" (no answer within {args.timeout:g} s on each try; --timeout sets the wait)"
            if isinstance(e, timed_out) or isinstance(getattr(e, "last_exception", None), timed_out)
            else ""
        )
        print(f"error: {command} failed: {first_line(e)}{waited}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder gone read-only: exit 1, as the generator's
        kept = "; what arrived whole is kept for the next run" if command == "pull" else ""
        print(f"error: {command} failed: {failed_io(e)}{kept}", file=sys.stderr)
        return 1
    if s["damaged"]:
        print(
            f"error: {len(s['damaged'])} object(s) failed verification; nothing was put in "
            f"{args.dir} (what verified is kept for the next run): "
            + one_line("; ".join(s["damaged"][:3])),
            file=sys.stderr,
        )
        return 1
    verified = ", ".join(f"{n} {label}" for label, n in s["by"].most_common())
    print(
        f"pulled {args.url} to {args.dir}: {s['downloaded']} files downloaded, "
        f"{s['kept']} kept from an interrupted pull, {s['skipped']} already present; "
        f"verified: {verified}"
    )
    return 0
