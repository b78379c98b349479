"""Saliency training on MIT1003 and CAT2000: loaders, metrics, models and a training loop.

Entry points: ``python -m train.saliency --config FILE`` (train),
``python -m train.saliency.verify DIR`` and ``python -m train.saliency.convert SRC DST``.
"""
