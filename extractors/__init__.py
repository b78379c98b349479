"""Video clip extractors behind one registry, and the multi-view model that fuses them.

``create_extractor(name, preset)`` builds one camera's clip encoder
``(B, 3, T, H, W) -> (B, D)``; ``build_model(name, preset)`` wraps it in the
:class:`MultiViewModel` the trainer uses. See :mod:`extractors.registry` for
the contract, the auxiliary-loss convention and plugins.

The names below load on first use, not with the package: ``python -m extractors``
imports the package before its command can turn Ctrl-C into one line, and torch
and the built-in extractors take seconds to load.
"""

from importlib import import_module

_HOMES = {
    "ExtractorConfig": "extractors.config",
    "ExtractorConfigError": "extractors.config",
    "DuplicateExtractorError": "extractors.registry",
    "ExtractorContractError": "extractors.registry",
    "UnknownExtractorError": "extractors.registry",
    "check_contract": "extractors.registry",
    "create_extractor": "extractors.registry",
    "get_extractor": "extractors.registry",
    "list_extractors": "extractors.registry",
    "register_extractor": "extractors.registry",
    "MultiViewModel": "extractors.multiview",
    "build_model": "extractors.multiview",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
