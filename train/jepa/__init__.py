"""Hierarchical JEPA image pretraining (I-JEPA, Assran et al. 2023, at several spatial levels),
its datasets, downloads and frozen-feature evaluation. Entry points:

    python -m train.jepa --config configs/jepa/<name>.yaml     # pretrain
    python -m train.jepa.evaluate --checkpoint C --dataset D    # linear probe, k-NN, RankMe
    python -m train.jepa.download NAME --data-path DIR          # fetch and verify a dataset
"""
