"Property tests for wrmf_nb.split.train_test_split: the guarantees on many random matrices, input formats, errors."

import numpy as np
import pytest
import scipy.sparse as sparse

from wrmf_nb.split import _pick_test_entries, check_split, pick_test_entries_loop, train_test_split


def random_ratings(rng, n_users=80, n_items=60, density=0.15, counts=False):
    m = sparse.random(n_users, n_items, density=density, format='csr', random_state=rng,
                      data_rvs=(lambda n: rng.integers(1, 5, n).astype(float)) if counts else np.ones)
    return m


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
        np.testing.assert_array_equal(_pick_test_entries(indptr, users, k, keys),
                                      pick_test_entries_loop(indptr, users, k, keys))


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
    with pytest.raises(TypeError, match='ratings must be a 2-D scipy.sparse matrix, not ndarray') as e:
        train_test_split(np.ones((3, 3)), 1)
    assert isinstance(e.value, ValueError)            # bad input, reported in one line by the CLI


@pytest.mark.parametrize('value', [-1.0, np.nan, np.inf])
def test_bad_counts_are_refused_with_the_one_message(value):
    ratings = sparse.csr_matrix(np.ones((3, 4)))
    ratings[1, 2] = value
    with pytest.raises(ValueError, match=r'ratings must hold finite, non-negative counts: 1 bad value\(s\), '
                                         r'the first at \(row 1, column 2\)'):
        train_test_split(ratings, 1, seed=0)


def test_check_split_catches_a_broken_split():
    ratings = random_ratings(np.random.default_rng(3), 30, 20, 0.4)
    train, test, users = train_test_split(ratings, 2, seed=0)
    check_split(ratings, train, test, users, 2)
    with pytest.raises(AssertionError, match='disjoint'): check_split(ratings, train + test, test, users, 2)
    with pytest.raises(AssertionError, match='exactly split_count'): check_split(ratings, train, test, users, 3)


def test_post_setting_full_fraction():
    "fraction=1 works when every user is eligible, and matches fraction=None then."
    ratings = sparse.csr_matrix(np.ones((10, 12)))
    a = train_test_split(ratings, 5, fraction=1.0, seed=0)
    b = train_test_split(ratings, 5, seed=0)
    assert a[2] == b[2] == list(range(10))
    check_split(ratings, *a, 5)
