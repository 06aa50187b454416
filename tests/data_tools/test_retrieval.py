"""FAISS greedy retrieval equals the all-pairs numpy reference; threshold and one-image-once invariants."""

import numpy as np
import pytest

from data_tools.retrieval import greedy_match_bruteforce, retrieve_pairs


def _features(rng, n, centers, noise):
    x = centers[rng.integers(0, len(centers), n)] + noise * rng.standard_normal((n, centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("top_n", [1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9])
def test_matches_bruteforce_reference(seed, top_n, threshold):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((12, 32))
    gen, und = _features(rng, 250, centers, 0.6), _features(rng, 180, centers, 0.6)
    # k=2 and refresh_batch=3 force many exhausted candidate lists and batched re-searches.
    fast = retrieve_pairs(gen, und, threshold, top_n, k=2, refresh_batch=3)
    ref = greedy_match_bruteforce(gen, und, threshold, top_n, chunk=64)
    assert [(m.gen_index, m.und_index) for m in fast] == [(m.gen_index, m.und_index) for m in ref]
    np.testing.assert_allclose([m.similarity for m in fast], [m.similarity for m in ref], atol=1e-5)
    assert len(fast) > 0


def test_invariants_threshold_one_image_once_top_n():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 16))
    gen, und = _features(rng, 300, centers, 0.5), _features(rng, 100, centers, 0.5)
    matches = retrieve_pairs(gen, und, threshold=0.6, top_n=2)
    und_used = [m.und_index for m in matches]
    assert len(und_used) == len(set(und_used))  # each understanding image at most once
    assert max(np.bincount([m.gen_index for m in matches])) <= 2
    assert all(m.similarity >= 0.6 for m in matches)
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True)  # accepted best-first
    for m in matches:
        assert m.similarity == pytest.approx(float(gen[m.gen_index] @ und[m.und_index]), abs=1e-5)


def test_best_match_wins_contested_image():
    und = np.array([[1.0, 0.0]], dtype=np.float32)
    gen = np.array([[0.8, 0.6], [1.0, 0.0]], dtype=np.float32)  # both want und 0; gen 1 is closer
    (match,) = retrieve_pairs(gen, und, threshold=0.5)
    assert (match.gen_index, match.und_index) == (1, 0) and match.similarity == pytest.approx(1.0)


def test_nothing_above_threshold_and_empty_inputs():
    gen = np.array([[1.0, 0.0]], dtype=np.float32)
    und = np.array([[0.0, 1.0]], dtype=np.float32)
    assert retrieve_pairs(gen, und, threshold=0.6) == []
    assert retrieve_pairs(gen[:0], und) == []
    with pytest.raises(ValueError, match="shapes"):
        retrieve_pairs(gen, np.zeros((3, 5), np.float32))
