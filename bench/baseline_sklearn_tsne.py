#!/usr/bin/env python3
"""The baseline for stage 3: read the features, PCA to 50, scikit-learn's TSNE. Nothing else.

    python bench/baseline_sklearn_tsne.py FEATURES_H5 [N_JOBS]
"""

import sys

import h5py
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

with h5py.File(sys.argv[1], "r") as handle:
    x = handle["features"][: int(handle.attrs["count"])].astype(np.float32)
n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
reduced = PCA(n_components=50, random_state=0).fit_transform(x)
TSNE(n_components=2, perplexity=30, init="pca", random_state=0, n_jobs=n_jobs).fit_transform(reduced)
