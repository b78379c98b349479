"""What push and pull ask of S3 itself, in one place: addresses, the endpoint, the client, the
bucket, a listing, and each transfer's deadline."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit

from trajkit.cli import short_repr
from trajkit.s3_multipart import START_TIMEOUTS, TIMEOUT_SECONDS, S3Error, in_background, pages

MB = 1 << 20
# Bucket names as S3 allows them, with upper case and '_' that some S3-compatible stores accept.
BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
MAX_KEY = 1024  # bytes, S3's limit


def has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix"); one trailing slash is allowed.

    Refused: control characters, '.' or '..' segments, empty segments: S3 would store such a
    key as it is, and a pull would make something else of it on disk.
    """
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise S3Error(f"expected an address like s3://bucket/prefix, got {url!r}")
    if has_control(url):
        raise S3Error(f"the address {url!r} contains a control character")
    bucket, _, prefix = url[5:].partition("/")
    if not BUCKET.fullmatch(bucket):
        raise S3Error(f"{bucket!r} is not a bucket name (3-63 letters, digits, '.', '-', '_')")
    prefix = prefix.removesuffix("/")
    segments = prefix.split("/") if prefix else []
    if "" in segments:
        raise S3Error(f"the address {url!r} has an empty path segment ('//')")
    if "." in segments or ".." in segments:
        raise S3Error(f"the address {url!r} has a '.' or '..' path segment")
    if len(prefix.encode()) > MAX_KEY // 2:
        raise S3Error(f"the prefix of {url!r} is too long for S3 keys under it")
    return bucket, prefix


def check_endpoint(url: str | None) -> None:
    """``--endpoint-url`` is ``http(s)://host[:port]`` (a trailing slash allowed), nothing
    else: botocore puts a path before every bucket's, so ``/other`` made every bucket
    "missing" and ``/../`` was taken for no path."""
    if url is None:
        return
    bad = S3Error(f"--endpoint-url must look like http(s)://host[:port], got {url!r}")
    if has_control(url) or any(c.isspace() for c in url):
        raise bad
    try:  # an unclosed IPv6 bracket raises in urlsplit, a port that is not a number in .port
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        raise bad from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise bad
    try:
        from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url
    except ImportError:  # without boto3 the command stops on the missing extra
        return
    if not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        raise bad  # a host botocore refuses ('a_b', '-x-', 'x..y') was a ValueError traceback


def key_for(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def make_client(endpoint_url: str | None, timeout: float = TIMEOUT_SECONDS):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def transfer_config(part_size: int = 64 * MB):
    """Parts of ``part_size`` (S3's minimum is 5 MiB); a file of at most one part goes whole."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_size + 1, multipart_chunksize=part_size)


def answered(client, call: Callable, what: str):
    """``call()``, a request with no body to move (a HEAD), within ``allowed_seconds`` of
    none: a store that sends its headers a byte now and then is never silent for --timeout,
    and held the command for ever."""
    seconds = allowed_seconds(client, 0)
    late = (
        f"{what} got no answer within {seconds:.0f} s ({START_TIMEOUTS} times --timeout): "
        "the store is too slow"
    )
    return in_background(call, seconds, late)


def head_object(client, bucket: str, key: str, **kw) -> dict:
    """The object's HEAD, within ``answered``'s deadline."""
    call = lambda: client.head_object(Bucket=bucket, Key=key, **kw)  # noqa: E731
    return answered(client, call, f"s3://{bucket}/{key}")


def head_or_none(client, bucket: str, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return head_object(client, bucket, key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def check_bucket(client, bucket: str) -> None:
    """One clear line if the bucket is missing or forbidden, before any transfer starts."""
    from botocore.exceptions import ClientError

    try:
        answered(client, lambda: client.head_bucket(Bucket=bucket), f"bucket {bucket!r}")
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        what = "does not exist" if code in ("404", "NoSuchBucket") else f"cannot be used ({code})"
        raise S3Error(f"bucket {bucket!r} {what}") from None


def listing(client, bucket: str, prefix: str) -> dict[str, dict]:
    """Every object under ``prefix``: key -> its listing entry (Size, ETag), in one paginated LIST.

    An entry without a key under the prefix or without a size is refused here, in one line:
    everything after relies on both."""
    base = f"{prefix}/" if prefix else ""
    where = f"s3://{bucket}/{base}"
    found: dict[str, dict] = {}
    for page in pages(client, "list_objects_v2", where, Bucket=bucket, Prefix=base):
        for entry in page.get("Contents", []):
            key, size = entry.get("Key"), entry.get("Size")
            if not (isinstance(key, str) and key.startswith(base)) or not (
                isinstance(size, int) and size >= 0
            ):
                raise S3Error(
                    f"the listing of {where} has an entry without a key under it or without a "
                    f"size ({short_repr(entry)}); the store does not answer as S3 does"
                )
            found[key] = entry
    return found


def allowed_seconds(client, size: int) -> float:
    """An object's transfer may take --timeout seconds per MB, after START_TIMEOUTS of them to
    start (boto3 tries a stalled download 5 times): at the default 60 s, 17 KB/s on average.
    Each read waits at most --timeout, but a store that sends a byte now and then is never
    that silent and held a pull for ever."""
    return (client.meta.config.read_timeout or TIMEOUT_SECONDS) * (START_TIMEOUTS + size / MB)


def transferred(client, call: Callable, size: int, what: str):
    """``call()``, the transfer of ``what`` (``size`` bytes), within ``allowed_seconds``."""
    seconds = allowed_seconds(client, size)
    late = (
        f"{what} was not transferred within {seconds:.0f} s ({START_TIMEOUTS} times "
        "--timeout to start, then --timeout a MB): the store is too slow"
    )
    return in_background(call, seconds, late)
