"""The renderer: sample ``i`` of ``(seed, config)`` as videos, a label and ground truth, in
memory (paths, cameras, arithmetic, the scene's objects). It knows no file names; see
docs/architecture.md."""
