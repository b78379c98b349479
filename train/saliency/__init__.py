"""Saliency training on MIT1003 and CAT2000: loaders, metrics, models and a training loop.

Entry points:
``python -m train.saliency --config FILE`` (train one variant into a run folder),
``python -m train.saliency.verify DIR`` (what is present and missing, per category),
``python -m train.saliency.convert SRC DST --to images|hdf5`` (between layouts, checked),
``python -m train.saliency.synthetic OUT`` (synthetic data in the MIT1003 layout).
"""
