"""The jobs that join the renderer to the format: chunked resumable generation and its
backends, healing on resume, the disk preflight, metadata, conversion between layouts,
push/pull, and samples rendered on the fly; see docs/architecture.md."""
