"""The jobs that join the renderer to the format: chunked resumable generation and its
backends, healing on resume, the disk preflight, the camera rig's metadata, and samples
rendered on the fly; see docs/architecture.md."""
