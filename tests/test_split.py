"Property tests for wrmf_nb.split.train_test_split: the guarantees on many random matrices, edge cases, speed."
import time

import numpy as np
import pytest
import scipy.sparse as sparse

from wrmf_nb.split import _pick_test_entries, train_test_split


def random_ratings(rng, n_users=80, n_items=60, density=0.15, counts=False):
    m = sparse.random(n_users, n_items, density=density, format='csr', random_state=rng,
                      data_rvs=(lambda n: rng.integers(1, 5, n).astype(float)) if counts else np.ones)
    return m


def check_split(ratings, train, test, user_index, split_count):
    ratings = sparse.csr_matrix(ratings)
    assert isinstance(train, sparse.csr_matrix) and isinstance(test, sparse.csr_matrix)
    assert train.shape == ratings.shape == test.shape
    assert train.dtype == ratings.dtype == test.dtype
    assert train.has_sorted_indices and test.has_sorted_indices
    assert train.multiply(test).nnz == 0                      # disjoint
    assert abs(train + test - ratings).sum() == 0              # exactly the original, values included
    assert train.nnz + test.nnz == ratings.nnz
    per_user = test.getnnz(axis=1)
    assert np.flatnonzero(per_user).tolist() == user_index
    assert (per_user[user_index] == split_count).all()
    assert (train.getnnz(axis=1)[user_index] >= split_count).all()
    assert user_index == sorted(user_index) and all(type(u) is int for u in user_index)
    assert (test.data != 0).all() and (train.data != 0).all()


@pytest.mark.parametrize('seed', range(25))
def test_guarantees_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    ratings = random_ratings(rng, n_users=int(rng.integers(20, 120)), n_items=int(rng.integers(20, 80)),
                             density=float(rng.uniform(0.15, 0.4)), counts=bool(seed % 2))
    split_count = int(rng.integers(1, 5))
    eligible = np.flatnonzero(ratings.getnnz(axis=1) >= 2 * split_count)
    if not len(eligible): pytest.skip('no eligible user drawn')
    train, test, users = train_test_split(ratings, split_count, seed=seed)
    check_split(ratings, train, test, users, split_count)
    assert users == eligible.tolist()          # without fraction: every eligible user
    fraction = len(eligible) / ratings.shape[0] * rng.uniform(0.1, 1)
    train, test, users = train_test_split(ratings, split_count, fraction=fraction, seed=seed)
    check_split(ratings, train, test, users, split_count)
    assert len(users) == int(np.floor(fraction * ratings.shape[0]))
    assert set(users) <= set(eligible.tolist())


def test_reproducible_and_seed_sensitive():
    ratings = random_ratings(np.random.default_rng(0), 200, 100, 0.2)
    a = train_test_split(ratings, 3, fraction=0.3, seed=7)
    b = train_test_split(ratings, 3, fraction=0.3, seed=7)
    c = train_test_split(ratings, 3, fraction=0.3, seed=8)
    assert a[2] == b[2] and (a[0] != b[0]).nnz == 0 and (a[1] != b[1]).nnz == 0
    assert a[2] != c[2] and (a[1] != c[1]).nnz > 0
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)   # a Generator works as a seed too
    assert (train_test_split(ratings, 3, seed=g1)[1] != train_test_split(ratings, 3, seed=g2)[1]).nnz == 0


def test_every_subset_is_possible():
    "With one user of 4 likes and split_count 2, all 6 pairs show up over seeds, about equally often."
    ratings = sparse.csr_matrix(np.ones((1, 4)))
    seen = {}
    for seed in range(600):
        key = tuple(train_test_split(ratings, 2, seed=seed)[1].indices)
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 6 and min(seen.values()) > 60


def test_vectorised_picker_matches_loop():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = rng.integers(0, 40, 60)
        indptr = np.concatenate([[0], np.cumsum(n)])
        k = int(rng.integers(1, 6))
        ok = np.flatnonzero(n >= 2 * k)
        users = np.sort(rng.choice(ok, min(len(ok), 15), replace=False))
        keys = rng.random(int(n[users].sum()))
        expect, j = [], 0
        for u in users:
            m = n[u]
            expect.extend(indptr[u] + np.argsort(keys[j:j + m])[:k])
            j += m
        np.testing.assert_array_equal(_pick_test_entries(indptr, users, k, keys), np.sort(expect))


def test_input_formats_and_input_unchanged():
    dense = np.array([[1, 0, 2, 1, 1, 3], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], float)
    for fmt in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix, sparse.lil_matrix, sparse.csr_array):
        m = fmt(dense)
        before = sparse.csr_matrix(m).toarray().copy()
        train, test, users = train_test_split(m, 2, seed=0)
        check_split(dense, train, test, users, 2)
        assert users == [0, 1]
        np.testing.assert_array_equal(sparse.csr_matrix(m).toarray(), before)


def test_explicit_zeros_and_duplicates():
    rows = np.array([0, 0, 0, 0, 0, 1, 1])
    cols = np.array([0, 1, 2, 3, 3, 0, 1])
    vals = np.array([1., 1., 0., 1., 1., 1., 1.])  # an explicit zero; (0, 3) given twice
    m = sparse.coo_matrix((vals, (rows, cols)), shape=(2, 4))
    train, test, users = train_test_split(m, 1, seed=0)
    assert users == [0, 1]
    assert (train + test).toarray().tolist() == [[1, 1, 0, 2], [1, 1, 0, 0]]
    assert (train + test).nnz == 5  # the explicit zero is not a like


@pytest.mark.parametrize('kw, err, msg', [
    (dict(split_count=0), ValueError, 'split_count must be >= 1'),
    (dict(split_count=2.5), TypeError, 'split_count must be an integer'),
    (dict(split_count=2, fraction=0.0), ValueError, 'fraction must be in'),
    (dict(split_count=2, fraction=1.2), ValueError, 'fraction must be in'),
    (dict(split_count=2, fraction=0.1), ValueError, 'selects no user'),
    (dict(split_count=2, fraction=0.9), ValueError, 'asks for 4 test users, but only 2 users have at least 2*split_count = 4'),
    (dict(split_count=4), ValueError, 'no user has at least 2*split_count = 8'),
])
def test_errors(kw, err, msg):
    ratings = sparse.csr_matrix(np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0],
                                          [0, 0, 0, 0, 0]], float))
    with pytest.raises(err, match=msg.replace('*', r'\*')): train_test_split(ratings, **kw)


def test_dense_input_refused():
    with pytest.raises(TypeError, match='scipy.sparse'): train_test_split(np.ones((3, 3)), 1)


def test_post_setting_full_fraction():
    "fraction=1 works when every user is eligible, and matches fraction=None then."
    ratings = sparse.csr_matrix(np.ones((10, 12)))
    a = train_test_split(ratings, 5, fraction=1.0, seed=0)
    b = train_test_split(ratings, 5, seed=0)
    assert a[2] == b[2] == list(range(10))
    check_split(ratings, *a, 5)


def test_sketchfab_size_is_fast():
    from wrmf_nb.data import build_likes, synthetic_likes, threshold_likes
    likes, _ = build_likes(threshold_likes(synthetic_likes(), verbose=False))
    best = np.inf
    for seed in range(3):
        t0 = time.perf_counter()
        train, test, users = train_test_split(likes, 5, fraction=0.2, seed=seed)
        best = min(best, time.perf_counter() - t0)
    check_split(likes, train, test, users, 5)
    assert len(users) == int(np.floor(0.2 * likes.shape[0]))
    assert best < 1.0, best
