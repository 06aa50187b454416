"""Aligned-pair candidates (PairUni §1 step 2): MiniBatchKMeans over U ∪ G features, one medoid per cluster.

The medoid is the member with the highest inner product with its cluster centroid (the paper's rule);
empty clusters give no medoid. Pure functions over arrays, so tests need no images.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.cluster import MiniBatchKMeans

logger = logging.getLogger(__name__)


def kmeans(features: np.ndarray, num_clusters: int, seed: int = 0, batch_size: int = 4096) -> MiniBatchKMeans:
    """Fit MiniBatchKMeans on `features` [N, D]; K is capped at N (with a warning)."""
    if num_clusters < 1:
        raise ValueError(f"num_clusters={num_clusters} must be >= 1; fix: pass --num-clusters K")
    if num_clusters > len(features):
        logger.warning("num_clusters=%d > %d samples; using %d", num_clusters, len(features), len(features))
        num_clusters = len(features)
    model = MiniBatchKMeans(n_clusters=num_clusters, random_state=seed, batch_size=batch_size, n_init=3)
    return model.fit(features)


def select_medoids(features: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the member with the highest inner product with its centroid, per non-empty cluster.

    features [N, D], labels [N] (cluster id per row), centroids [K, D] -> medoid row indices [K'], sorted by
    cluster id; ties go to the lowest row index.
    """
    scores = np.einsum("nd,nd->n", features, centroids[labels])  # [N] <x_i, c_{label(i)}>
    # Sort by (cluster, -score, row) so the first row of each cluster block is its medoid.
    order = np.lexsort((np.arange(len(labels)), -scores, labels))
    sorted_labels = labels[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_labels[1:] != sorted_labels[:-1]
    return order[first]


def cluster_medoids(features: np.ndarray, num_clusters: int, seed: int = 0) -> np.ndarray:
    """MiniBatchKMeans + `select_medoids`: the row indices of the aligned-pair candidates."""
    model = kmeans(features, num_clusters, seed)
    medoids = select_medoids(features, model.labels_, model.cluster_centers_)
    logger.info("%d clusters -> %d medoids from %d samples", num_clusters, len(medoids), len(features))
    return medoids
