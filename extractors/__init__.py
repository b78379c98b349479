"""Video clip extractors behind one registry, and the multi-view model that fuses them.

``create_extractor(name, preset)`` builds one camera's clip encoder
``(B, 3, T, H, W) -> (B, D)``; ``build_model(name, preset)`` wraps it in the
:class:`MultiViewModel` the trainer uses. See :mod:`extractors.registry` for
the contract, the auxiliary-loss convention and plugins.
"""

from extractors.config import ExtractorConfig, ExtractorConfigError
from extractors.registry import (
    DuplicateExtractorError,
    UnknownExtractorError,
    create_extractor,
    get_extractor,
    list_extractors,
    register_extractor,
)

# Built-in extractors register themselves on import.
from extractors import i3d, magvit, slowfast, transformer  # noqa: E402, F401  isort: skip
from extractors.multiview import MultiViewModel, build_model  # noqa: E402  isort: skip

__all__ = [
    "DuplicateExtractorError",
    "ExtractorConfig",
    "ExtractorConfigError",
    "MultiViewModel",
    "UnknownExtractorError",
    "build_model",
    "create_extractor",
    "get_extractor",
    "list_extractors",
    "register_extractor",
]
