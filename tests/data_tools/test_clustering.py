"""Medoid selection: the member with the highest inner product with its cluster centroid."""

import numpy as np

from data_tools.clustering import cluster_medoids, select_medoids


def test_select_medoids_hand_made_clusters():
    features = np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1], [0.1, 0.8], [0.2, 0.9]], dtype=np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    # cluster 0 scores: 1.0, 0.9, 0.5 -> row 0; cluster 1 scores: 1.0, 0.8, 0.9 -> row 3
    assert select_medoids(features, labels, centroids).tolist() == [0, 3]


def test_select_medoids_skips_empty_cluster_and_breaks_ties_by_row():
    features = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    labels = np.array([2, 2, 0])
    centroids = np.array([[0.0, 1.0], [5.0, 5.0], [1.0, 0.0]])  # cluster 1 has no members
    assert select_medoids(features, labels, centroids).tolist() == [2, 0]


def test_cluster_medoids_one_per_blob():
    rng = np.random.default_rng(0)
    centers = np.eye(4, 8) * 10
    x = np.concatenate([c + rng.standard_normal((30, 8)) for c in centers])
    medoids = cluster_medoids(x, num_clusters=4, seed=0)
    assert sorted(m // 30 for m in medoids) == [0, 1, 2, 3]  # one medoid from each blob
