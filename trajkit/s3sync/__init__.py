"""``push DIR s3://bucket/prefix`` and ``pull s3://bucket/prefix DIR``: copy any folder to and from S3.

What a kind of folder adds is told by its ``FolderRules``: the file written last (a
dataset's ``metadata.json``), its writers' lock, the manifests that hold the SHA-256 of
other files, the files its own reader checks, the caches it computes again. The default
rules know none of these; the dataset format's are ``generator.dataformat.remote.DATASET``.

push
  lists the prefix once and skips a file whose object has the same size and the same hash
  (its ETag is the MD5 of the file, or of its parts; only an object whose ETag cannot tell,
  e.g. sent in parts of another size, costs one HEAD for its sha256 metadata), so an
  interrupted push is simply run again. Every object goes up with S3's SHA-256 checksum
  (``ChecksumAlgorithm="SHA256"``, checked by S3 on arrival) and with the file's SHA-256 in
  its user metadata (``x-amz-meta-sha256``). Files larger than one part go up in parts, and
  an interrupted multipart upload is continued part by part (``trajkit.s3_multipart``).
  The file written last goes last, so a prefix looks complete only when it is.

pull
  refuses a prefix without the file written last (not whole), a key that is both a file
  and a folder, and a DIR whose folder stands where a file goes (or the reverse), before
  anything moves. It verifies every object before anything is put in place: every SHA-256
  known for it must hold, its sha256 metadata, S3's SHA-256 checksum of a single-part
  object and the SHA-256 of each of the folder's manifests that lists it (fetched first for
  that reason); an object with none of these by S3's checksum of its parts (recomputed from
  the first part's size). The files the folder's reader checks itself need none; a cache
  it computes again is left out without a hash. Any other object without a hash fails the
  pull. Objects are downloaded into ``.DIR.pull-tmp`` beside DIR (refused if a link or not
  a pull's), and moved into DIR only once every one verified (copied when DIR is another
  filesystem), with the file written last moved last; a failed or interrupted pull leaves
  DIR as it was, and the next run keeps what already verified. DIR must be new, empty, or
  an earlier pull of the same address (recorded in ``.DIR.pulled-from`` beside it).

Both bound a listing (``LISTING_PAGES``) and each object's transfer (``START_TIMEOUTS``), and
wait for a transfer in the main thread, so one Ctrl-C or SIGTERM stops them at once.
Both hold the folder's writer lock (``trajkit.lock``), if the rules name one and it exists,
while they run: a push or pull is refused while a writer writes the folder, and a writer
cannot start meanwhile. Credentials come from boto3's usual chain (environment, ``~/.aws``,
instance role); ``--endpoint-url`` points at any S3-compatible store (MinIO, Ceph, R2).

The package, one job a module: ``store`` (S3 itself: addresses, client, bucket, listing,
transfer deadlines), ``rules`` (``FolderRules``, what is left out, the writer lock),
``upload`` (push), ``verify`` (one object's SHA-256 checks), ``download`` (pull),
``staging`` (pull's staging folder and moves into place), ``command`` (the command line).
"""

from trajkit.s3_multipart import S3Error
from trajkit.s3sync.command import main
from trajkit.s3sync.download import pull
from trajkit.s3sync.rules import FolderRules
from trajkit.s3sync.store import MAX_KEY, MB, check_bucket, check_endpoint, make_client, parse_url
from trajkit.s3sync.upload import push

__all__ = [
    "S3Error",
    "FolderRules",
    "parse_url",
    "check_endpoint",
    "push",
    "pull",
    "main",
    "MB",
    "make_client",
    "check_bucket",
    "MAX_KEY",
]
