"""What every part of the project uses and none of them owns: atomic files and hashing, the
command-line conventions (one-line errors, signals), YAML reading, folder locks, S3 sync.

It imports nothing of ``generator``, ``extractors`` or ``train`` (``make lint`` checks it);
see docs/architecture.md.
"""
