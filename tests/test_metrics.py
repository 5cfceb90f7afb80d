"Property tests for wrmf_nb.metrics: the fast metrics against plain dense numpy definitions, ties, edge cases."
from types import SimpleNamespace

import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from wrmf_nb.checks import model_factors

from wrmf_nb.metrics import (calculate_mse, dense_mse, dense_user_metrics, precision_at_k, precisions_at_k,
                             ranking_metrics, user_metrics)
import wrmf_nb.metrics as metrics


def model_of(X, Y):
    return SimpleNamespace(user_vectors=np.asarray(X), item_vectors=np.asarray(Y))


def random_case(rng, trial, dtype=np.float64):
    "A random model, relevant matrix, exclusion matrix and user_index; every third case has integer factors (ties)."
    nu, ni, f = int(rng.integers(1, 40)), int(rng.integers(1, 120)), int(rng.integers(1, 6))
    if trial % 3 == 0:
        X, Y = rng.integers(-2, 3, (nu, f)).astype(dtype), rng.integers(-2, 3, (ni, f)).astype(dtype)
    else:
        X, Y = rng.normal(size=(nu, f)).astype(dtype), rng.normal(size=(ni, f)).astype(dtype)
    dens = 0.7 if trial % 4 == 0 else 0.12
    R = sp.random(nu, ni, density=dens, random_state=trial, format='csr')
    E = sp.random(nu, ni, density=0.2, random_state=10_000 + trial, format='csr')
    ui = None if trial % 2 else rng.choice(nu, size=max(1, nu // 2), replace=True).tolist()
    return model_of(X, Y), R, E, ui


def post_precision_at_k(model, ratings, k, user_index):
    "The post's precision@k, from the dense prediction matrix (with the lower-index-first tie rule made explicit)."
    if not user_index: user_index = range(ratings.shape[0])
    P = model.user_vectors.astype(np.float64) @ model.item_vectors.astype(np.float64).T
    out = []
    for u in user_index:
        order = np.lexsort((np.arange(P.shape[1]), -P[u]))[:k]
        out.append(len(set(order) & set(ratings.getrow(u).indices)) / k)
    return np.mean(out)


@pytest.mark.parametrize('trial', range(40))
def test_user_metrics_equal_dense_reference(trial):
    rng = np.random.default_rng(trial)
    m, R, E, ui = random_case(rng, trial)
    for k in (1, 2, 5, 17, 100, 500):
        for ex in (None, E):
            fast, ref = user_metrics(m, R, k, ui, ex), dense_user_metrics(m, R, k, ui, ex)
            pd.testing.assert_frame_equal(fast, ref, check_exact=False, atol=1e-9, rtol=0)


@pytest.mark.parametrize('trial', range(20))
def test_averages_and_post_definition(trial):
    rng = np.random.default_rng(100 + trial)
    m, R, E, ui = random_case(rng, trial)
    d = dense_user_metrics(m, R, 5, ui)
    assert precision_at_k(m, R, 5, ui) == pytest.approx(d.precision.mean(), abs=1e-12)
    assert precision_at_k(m, R, 5, ui) == pytest.approx(post_precision_at_k(m, R, 5, ui), abs=1e-12)
    for ex in (None, E):
        got, d = ranking_metrics(m, R, 5, ui, ex), dense_user_metrics(m, R, 5, ui, ex)
        ok = d.n_relevant > 0
        assert precision_at_k(m, R, 5, ui, ex) == pytest.approx(d.precision.mean(), abs=1e-9)
        for key, col in (('precision', 'precision'), ('recall', 'recall'), ('map', 'ap'), ('ndcg', 'ndcg')):
            exp = d[col][ok].mean() if ok.any() else np.nan
            assert got[key] == pytest.approx(exp, abs=1e-9, nan_ok=True)
        auc = d.auc[ok].dropna()
        assert got['auc'] == pytest.approx(auc.mean() if len(auc) else np.nan, abs=1e-9, nan_ok=True)
        assert precisions_at_k(m, [R, E], 5, ui, ex) == pytest.approx(
            [precision_at_k(m, R, 5, ui, ex), precision_at_k(m, E, 5, ui, ex)], abs=1e-12)


def test_float32_integer_factors_exact():
    rng = np.random.default_rng(5)
    X, Y = rng.integers(-3, 4, (50, 4)).astype(np.float32), rng.integers(-3, 4, (90, 4)).astype(np.float32)
    R = sp.random(50, 90, density=0.1, random_state=1, format='csr')
    pd.testing.assert_frame_equal(user_metrics(model_of(X, Y), R, 5), dense_user_metrics(model_of(X, Y), R, 5),
                                  check_exact=False, atol=1e-9, rtol=0)


def test_ties_lower_index_first():
    Y = np.ones((10, 3))                                    # every item scores the same
    m = model_of(np.ones((2, 3)), Y)
    R = sp.csr_matrix(([1., 1.], ([0, 1], [2, 9])), shape=(2, 10))
    d = user_metrics(m, R, k=3)
    assert d.precision.tolist() == [1 / 3, 0.0]                 # top 3 are items 0, 1, 2
    assert d.auc.tolist() == [pytest.approx(7 / 9), 0.0]        # item 2 beats 7 of 9 others; item 9 beats none
    E = sp.csr_matrix(([1.], ([1], [0])), shape=(2, 10))
    _, _, top = metrics._rank(m, R, 3, None, E, False)
    assert top.tolist() == [[0, 1, 2], [1, 2, 3]]


def test_zero_vectors_and_small_catalogue():
    m = model_of(np.zeros((3, 2)), np.zeros((4, 2)))
    R = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], float))
    d = user_metrics(m, R, k=10)                                # k larger than the catalogue: padded, divided by k
    assert d.precision.tolist() == [0.1, 0.1, 0.0]
    assert d.recall.tolist() == [1.0, 1.0, 0.0]
    assert d.auc.iloc[0] == 1.0 and d.auc.iloc[1] == 0.0 and np.isnan(d.auc.iloc[2])
    E = sp.csr_matrix(np.ones((3, 4)))                          # everything excluded: nothing to rank
    d = user_metrics(m, R, k=2, exclude=E)
    assert d.precision.tolist() == [0, 0, 0] and d.n_relevant.tolist() == [0, 0, 0]
    assert np.isnan(ranking_metrics(m, R, 2, exclude=E)['auc'])


def test_input_formats_and_stored_zeros():
    rng = np.random.default_rng(3)
    m = model_of(rng.normal(size=(20, 3)), rng.normal(size=(30, 3)))
    R = sp.random(20, 30, density=0.2, random_state=2, format='csr')
    base = user_metrics(m, R, 5)
    for alt in (R.toarray(), R.tocoo(), R.tocsc(), sp.csr_array(R)):
        pd.testing.assert_frame_equal(user_metrics(m, alt, 5), base)
    Z = R.copy(); Z.data[::2] = 0                               # stored zeros are not likes
    Zc = Z.copy(); Zc.eliminate_zeros()
    pd.testing.assert_frame_equal(user_metrics(m, Z, 5), user_metrics(m, Zc, 5))
    U = sp.csr_matrix((R.data[::-1].copy(), R.indices[::-1].copy(), R.indptr), shape=R.shape)  # indices not sorted
    U.has_sorted_indices = False
    assert precision_at_k(m, U, 5) == pytest.approx(precision_at_k(m, sp.csr_matrix(U.toarray()), 5))
    assert R.has_canonical_format                               # the caller's matrix was not modified


def test_user_index_conventions():
    rng = np.random.default_rng(4)
    m = model_of(rng.normal(size=(12, 3)), rng.normal(size=(15, 3)))
    R = sp.random(12, 15, density=0.3, random_state=4, format='csr')
    allu = precision_at_k(m, R, 3)
    for empty in (None, [], range(0), np.array([], dtype=int)):
        assert precision_at_k(m, R, 3, empty) == allu
        assert calculate_mse(m, R, empty) == calculate_mse(m, R)
    assert precision_at_k(m, R, 3, range(12)) == allu
    assert precision_at_k(m, R, 3, np.arange(12, dtype=np.int32)) == allu
    dup = [1, 1, 5]
    assert precision_at_k(m, R, 3, dup) == pytest.approx(dense_user_metrics(m, R, 3, dup).precision.mean())
    with pytest.raises(IndexError, match=r'user_index\[1\] = -1 is out of range'):
        precision_at_k(m, R, 3, [0, -1])


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_mse_equals_dense_on_a_bigger_random_case(dtype):
    rng = np.random.default_rng(0)
    m = model_of(rng.normal(size=(300, 8)).astype(dtype), rng.normal(size=(200, 8)).astype(dtype))
    R = sp.random(300, 200, density=0.05, random_state=1, format='csr')
    ui = sorted(rng.choice(300, 60, replace=False).tolist())
    assert calculate_mse(m, R) == pytest.approx(dense_mse(m, R), rel=1e-9)
    assert calculate_mse(m, R, ui) == pytest.approx(dense_mse(m, R, ui), rel=1e-9)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_mse_equals_dense(dtype):
    rng = np.random.default_rng(9)
    m = model_of(rng.normal(size=(80, 6)).astype(dtype), rng.normal(size=(70, 6)).astype(dtype))
    R = sp.random(80, 70, density=0.1, random_state=3, format='csr')
    R.data = np.round(R.data * 4)                               # counts, not only 0/1
    for ui in (None, [0, 5, 5, 79], list(range(0, 80, 3))):
        assert calculate_mse(m, R, ui) == pytest.approx(dense_mse(m, R, ui), rel=1e-10)
        P = m.user_vectors.astype(np.float64) @ m.item_vectors.astype(np.float64).T
        rows = range(80) if not ui else ui
        assert calculate_mse(m, R, ui) == pytest.approx(((R.toarray()[rows] - P[rows]) ** 2).mean(), rel=1e-10)


def test_thread_count_does_not_change_results(monkeypatch):
    monkeypatch.setattr(metrics, '_PARALLEL_CELLS', 0)          # several workers even on this small case
    rng = np.random.default_rng(11)
    m = model_of(rng.normal(size=(300, 8)), rng.normal(size=(400, 8)))
    R = sp.random(300, 400, density=0.05, random_state=1, format='csr')
    E = sp.random(300, 400, density=0.05, random_state=2, format='csr')
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1); one = user_metrics(m, R, 5, exclude=E)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS); many = user_metrics(m, R, 5, exclude=E)
    finally: numba.set_num_threads(prev)
    pd.testing.assert_frame_equal(one, many)


def test_blocks_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(12)
    m = model_of(rng.normal(size=(100, 4)), rng.normal(size=(50, 4)))
    R = sp.random(100, 50, density=0.1, random_state=1, format='csr')
    whole = user_metrics(m, R, 5)
    monkeypatch.setattr(metrics, '_BLOCK_BYTES', 50 * 8 * 8)   # blocks of 8 users
    pd.testing.assert_frame_equal(user_metrics(m, R, 5), whole)


def test_errors_name_the_problem():
    m = model_of(np.ones((3, 2)), np.ones((4, 2)))
    R = sp.csr_matrix((3, 4))
    with pytest.raises(ValueError, match='ratings is 3 x 5 but the model has 3 users x 4 items'):
        precision_at_k(m, sp.csr_matrix((3, 5)))
    with pytest.raises(ValueError, match='exclude is 2 x 4'):
        ranking_metrics(m, R, exclude=sp.csr_matrix((2, 4)))
    with pytest.raises(ValueError, match='k must be a positive integer, got 0'):
        precision_at_k(m, R, k=0)
    with pytest.raises(ValueError, match='k must be a positive integer'):
        ranking_metrics(m, R, k=2.5)
    with pytest.raises(IndexError, match=r'user_index\[0\] = 5 is out of range'):
        precision_at_k(m, R, user_index=[5])
    with pytest.raises(ValueError, match='k must be a positive integer'):
        precision_at_k(m, R, k=True)
    with pytest.raises(ValueError, match='fit the model first'):
        calculate_mse(SimpleNamespace(), R)
    with pytest.raises(ValueError, match='fit the model first'):
        ranking_metrics(SimpleNamespace(), R)
    with pytest.raises(ValueError, match=r'item_vectors holds NaN or infinite values: 1 bad value\(s\), the first at \(row 1, column 0\)'):
        precision_at_k(model_of(np.ones((3, 2)), np.array([[1, 1], [np.inf, 0], [0, 0], [1, 1]])), R)
    with pytest.raises(MemoryError, match='too big for the reference'):
        dense_mse(model_of(np.ones((5000, 1)), np.ones((5000, 1))), sp.csr_matrix((5000, 5000)))


def test_realistic_model_and_exclusion():
    "On a fitted ALS model: excluding training likes raises test precision, and everything agrees with the reference."
    from wrmf_nb.data import synthetic_likes, threshold_likes, likes_matrix
    from wrmf_nb.split import train_test_split
    from wrmf_nb.als import ALS
    likes = likes_matrix(threshold_likes(synthetic_likes(n_users=3000, n_items=1500, n_likes=30_000, seed=3),
                                         5, 5, verbose=False))
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=1)
    model = ALS(num_factors=16, iterations=5, random_state=0).fit(train)
    post, excl = precision_at_k(model, test, 5, users), precision_at_k(model, test, 5, users, exclude=train)
    assert excl > post
    d = dense_user_metrics(model, test, 5, users, train)
    assert excl == pytest.approx(d.precision.mean(), abs=1e-12)
    r = ranking_metrics(model, test, 5, users, train)
    assert r['auc'] == pytest.approx(d.auc.mean(), abs=1e-9) and r['auc'] > 0.7
    # users without test likes: the post's average counts them as zeros, ranking_metrics leaves them out
    all_users = precision_at_k(model, test, 5, exclude=train)
    assert all_users == pytest.approx(excl * len(users) / test.shape[0], abs=1e-12)
    assert ranking_metrics(model, test, 5, exclude=train)['precision'] == pytest.approx(excl, abs=1e-12)


@pytest.mark.parametrize('tile', [1, 3, 16])
def test_top_k_shortcut_equals_full_ranking(monkeypatch, tile):
    "The norm-ordered, early-stopping top-k path gives exactly the full ranking's top k, ties included."
    monkeypatch.setattr(metrics, '_TILE', tile)
    rng = np.random.default_rng(tile)
    for trial in range(30):
        m, R, E, ui = random_case(rng, trial, dtype=np.float32 if trial % 2 else np.float64)
        for k in (1, 5, 40):
            for ex in (None, E):
                _, res_full, top_full = metrics._rank(m, R, k, ui, ex, True)
                _, res_fast, top_fast = metrics._rank(m, R, k, ui, ex, False)
                np.testing.assert_array_equal(top_fast, top_full)
                np.testing.assert_array_equal(res_fast[:, 0], res_full[:, 0])


def test_top_k_shortcut_on_a_fitted_model():
    from wrmf_nb.als import ALS
    rng = np.random.default_rng(0)
    R = sp.random(400, 900, density=0.03, random_state=0, format='csr'); R.data[:] = 1
    model = ALS(num_factors=8, iterations=3, random_state=0).fit(R)
    for ex in (None, R):
        _, _, full = metrics._rank(model, R, 10, None, ex, True)
        _, _, fast = metrics._rank(model, R, 10, None, ex, False)
        np.testing.assert_array_equal(fast, full)


def test_full_ranking_in_small_blocks_on_two_workers_equals_dense_reference(monkeypatch):
    "Many small blocks claimed by two workers: every number still matches the reference."
    monkeypatch.setattr(metrics, '_BLOCK_BYTES', 1)              # blocks of 4 users
    monkeypatch.setattr(metrics, '_n_workers', lambda cells, n_blocks: 2)
    rng = np.random.default_rng(101)
    for trial in range(24):
        m, R, E, ui = random_case(rng, trial)
        for k in (1, 4, 30):
            for ex in (None, E):
                pd.testing.assert_frame_equal(user_metrics(m, R, k, ui, ex), dense_user_metrics(m, R, k, ui, ex),
                                              check_exact=False, atol=1e-9, rtol=0)


@pytest.mark.parametrize('want_auc', [True, False])
@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_one_and_two_workers_give_identical_results(monkeypatch, want_auc, dtype):
    "The workers claim blocks in any order; each user's result depends on its block only, so the bits agree."
    from wrmf_nb.als import ALS
    R = sp.random(700, 1300, density=0.02, random_state=3, format='csr'); R.data[:] = 1
    model = ALS(num_factors=12, iterations=2, random_state=0, dtype=dtype).fit(R)
    E = sp.random(700, 1300, density=0.02, random_state=4, format='csr')
    out = {}
    for n_workers in (1, 2):
        monkeypatch.setattr(metrics, '_n_workers', lambda cells, n_blocks: n_workers)
        out[n_workers] = metrics._rank(model, R, 7, None, E, want_auc)[1:]
    for one, two in zip(out[1], out[2]): np.testing.assert_array_equal(one, two)



@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_mse_one_and_two_workers_give_identical_results(monkeypatch, dtype):
    "The MSE's workers claim blocks of users; each user's sums are its own: same bits."
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(500, 9)), rng.normal(size=(300, 9))
    m = model_of(X.astype(dtype), Y.astype(dtype))
    R = sp.random(500, 300, density=0.05, random_state=6, format='csr')
    R.data = np.round(R.data * 5)
    ui, calls, out = [3, 3, 0, 499] + list(range(7, 500, 2)), [], {}
    run = metrics.run_workers
    counted = lambda n, work: (calls.append(n), run(n, work))
    monkeypatch.setattr(metrics, 'run_workers', counted)
    for n_workers in (1, 2):
        monkeypatch.setattr(metrics, '_n_workers', lambda cells, n_blocks: n_workers)
        out[n_workers] = metrics.calculate_mses(m, [R, R[:, ::-1]], ui)
    assert out[1] == out[2] and calls == [1, 1, 2, 2]
    assert out[1][0] == pytest.approx(dense_mse(m, R, ui), rel=1e-10)


def test_top_n_one_and_two_workers_give_identical_results(monkeypatch):
    "Chapter 7's top_n shares the top-list step: its rows, claimed by two workers, agree bit for bit."
    from wrmf_nb import similar
    S = np.random.default_rng(0).integers(0, 50, (300, 4000)).astype(np.float32)   # many ties
    monkeypatch.setattr(similar, '_PARALLEL_SCORES', 0)
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1); one = similar.top_n(S, 20)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS)); two = similar.top_n(S, 20)
    finally: numba.set_num_threads(prev)
    np.testing.assert_array_equal(one[0], two[0]); np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[0], np.argsort(-S, axis=1, kind='stable')[:, :20])
