"Neighbours, recommendations and fold-in against dense numpy references, and fold-in against an exact ALS sweep."
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sparse

from wrmf_nb.similar import (category_agreement, fold_in, fold_in_reference, recommend, recommend_new_user,
                             similar_items, top_n)


def dense_cosine(Y):
    n = np.linalg.norm(Y, axis=1)
    n[n == 0] = 1
    return (Y @ Y.T) / n[:, None] / n[None, :]


def random_model(n_users=50, n_items=300, f=16, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(user_vectors=rng.normal(size=(n_users, f)).astype(dtype),
                           item_vectors=rng.normal(size=(n_items, f)).astype(dtype), alpha=15.0, regularization=0.5)


def random_likes(n_users, n_items, density=0.05, seed=1):
    R = sparse.random(n_users, n_items, density=density, random_state=seed, format='csr')
    R.data[:] = 1
    return R


@pytest.mark.parametrize('block_bytes', [1, 5000, 2**26])
@pytest.mark.parametrize('include_self', [True, False])
def test_similar_items_matches_dense(block_bytes, include_self):
    m = random_model()
    m.item_vectors[7] = 0                              # an all-zero item is allowed
    S = dense_cosine(m.item_vectors)
    items = np.arange(0, 300, 7)
    ids, scores = similar_items(m, items, N=12, include_self=include_self, block_bytes=block_bytes)
    assert ids.shape == scores.shape == (len(items), 12)
    for r, i in enumerate(items):
        row = S[i].copy()
        row[i] = -np.inf
        k = 11 if include_self else 12
        ref = np.argsort(-row, kind='stable')[:k]
        if include_self:
            assert ids[r, 0] == i
            np.testing.assert_allclose(scores[r, 0], S[i, i], atol=1e-12)
            got, got_s = ids[r, 1:], scores[r, 1:]
        else:
            got, got_s = ids[r], scores[r]
        if i == 7:   # all scores 0: any order of ties is fine, values must be 0
            np.testing.assert_allclose(got_s, 0, atol=1e-12); continue
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_allclose(got_s, row[ref], rtol=1e-10)


def test_similar_items_single_float32_and_caps():
    m = random_model(dtype=np.float32, n_items=20)
    ids, scores = similar_items(m, np.int64(3), N=5)
    assert ids.shape == (5,) and scores.dtype == np.float32 and ids[0] == 3
    assert abs(scores[0] - 1) < 1e-5
    ids, _ = similar_items(m, 3, N=100, include_self=False)
    assert len(ids) == 19 and 3 not in ids and len(set(ids)) == 19
    with pytest.raises(IndexError, match='out of range'): similar_items(m, [0, 20])
    with pytest.raises(IndexError, match='out of range'): similar_items(m, -1)
    with pytest.raises(TypeError, match='integer indices'): similar_items(m, 1.5)


def test_top_n_against_argsort():
    rng = np.random.default_rng(3)
    S = rng.normal(size=(40, 500))
    for N in [1, 7, 499, 500, 600]:
        ids, vals = top_n(S, N)
        ref = np.argsort(-S, axis=1)[:, :min(N, 500)]
        np.testing.assert_array_equal(ids, ref)
        np.testing.assert_array_equal(vals, np.take_along_axis(S, ref, 1))


@pytest.mark.parametrize('block_bytes', [1, 3000, 2**26])
def test_recommend_matches_dense(block_bytes):
    m = random_model()
    R = random_likes(50, 300)
    users = np.arange(50)
    ids, scores = recommend(m, users, R, N=10, block_bytes=block_bytes)
    P = m.user_vectors @ m.item_vectors.T
    P[R.toarray() > 0] = -np.inf
    ref = np.argsort(-P, axis=1, kind='stable')[:, :10]
    np.testing.assert_array_equal(ids, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(P, ref, 1))
    assert not np.any(R[np.repeat(users, 10), ids.ravel()])      # nothing already liked
    ids1, scores1 = recommend(m, 4, R, N=10)
    np.testing.assert_array_equal(ids1, ids[4])
    raw, _ = recommend(m, users, N=10, filter_liked=False)
    np.testing.assert_array_equal(raw, np.argsort(-(m.user_vectors @ m.item_vectors.T), axis=1, kind='stable')[:, :10])


def test_recommend_pads_when_everything_liked():
    m = random_model(n_users=3, n_items=5)
    R = sparse.csr_matrix(np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=float))
    ids, scores = recommend(m, [0, 1, 2], R, N=3)
    assert ids[0, 0] == 4 and list(ids[0, 1:]) == [-1, -1] and np.isneginf(scores[0, 1:]).all()
    assert list(ids[1]) == [-1, -1, -1]
    assert (ids[2] >= 0).all()


def test_fold_in_matches_dense_normal_equations():
    m = random_model(n_items=80, f=6)
    rng = np.random.default_rng(5)
    for _ in range(5):
        idx = rng.choice(80, size=rng.integers(1, 15), replace=False)
        d = rng.integers(1, 4, size=len(idx)).astype(float)
        x = fold_in(m, idx, counts=d)
        np.testing.assert_allclose(x, fold_in_reference(m.item_vectors, idx, d, m.alpha, m.regularization), rtol=1e-8, atol=1e-10)
    R = sparse.random(20, 80, density=0.1, random_state=2, format='csr')
    R.data = np.ceil(R.data * 3)
    X = fold_in(m, R)
    for u in range(20):
        row = R[u]
        np.testing.assert_allclose(X[u], fold_in_reference(m.item_vectors, row.indices, row.data, m.alpha, m.regularization), rtol=1e-8, atol=1e-10)
    # an empty row: no likes at all gives the zero vector
    np.testing.assert_allclose(fold_in(m, sparse.csr_matrix((1, 80)))[0], 0)
    with pytest.raises(ValueError, match='columns'): fold_in(m, sparse.csr_matrix((1, 79)))
    with pytest.raises(ValueError, match='counts'): fold_in(m, [1, 2], counts=[1])


def test_fold_in_matches_loss_oracle():
    loss = pytest.importorskip('wrmf_nb.loss')
    m = random_model(n_items=60, f=5)
    x = fold_in(m, [3, 9, 27], counts=[1, 2, 1])
    np.testing.assert_allclose(x, loss.solve_vector_dense(m.item_vectors, [3, 9, 27], [1, 2, 1], m.alpha, m.regularization), rtol=1e-8)


def test_recommend_new_user():
    m = random_model(n_items=40, f=4)
    ids, scores = recommend_new_user(m, [1, 2, 3], N=5)
    x = fold_in(m, [1, 2, 3])
    s = m.item_vectors @ x
    s[[1, 2, 3]] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-s)[:5])
    np.testing.assert_allclose(scores, np.sort(s)[::-1][:5])


def test_category_agreement():
    rng = np.random.default_rng(0)
    cats = rng.integers(0, 5, size=400)
    m = SimpleNamespace(item_vectors=np.eye(5)[cats] * 3 + rng.normal(scale=0.3, size=(400, 5)))
    res = category_agreement(m, cats, N=10)
    share = np.bincount(cats) / 400
    assert res['baseline'] == pytest.approx(np.sum(share ** 2))
    assert res['agreement'] > 0.95 and res['per_item'].shape == (400,)
    res = category_agreement(m, cats, N=10, items=[0, 1, 2])
    assert res['n_items'] == 3
    with pytest.raises(ValueError, match='categories'): category_agreement(m, cats[:10])


def test_fold_in_equals_exact_als_user_sweep():
    "Folding in user u's row against fixed item vectors = the user vector one more exact (Cholesky) user half-sweep gives."
    als = pytest.importorskip('wrmf_nb.als')
    R = random_likes(60, 40, density=0.15, seed=4)
    model = als.ALS(num_factors=6, regularization=0.3, alpha=12.0, iterations=3, solver='cholesky',
                    dtype=np.float64, random_state=0)
    model.fit(R)
    Y_before = model.item_vectors.copy()
    folded = fold_in(SimpleNamespace(item_vectors=Y_before, alpha=12.0, regularization=0.3), R)
    model.iterations = 1
    model.fit_partial(R)           # one more sweep: users first, solved exactly against Y_before
    np.testing.assert_allclose(folded, model.user_vectors, rtol=1e-6, atol=1e-8)
    # and the post-facing call: a model's own alpha/regularization are used by default
    np.testing.assert_allclose(fold_in(model, R[5].indices), fold_in(model, R[5:6])[0], rtol=1e-10)


# ---------------------------------------------------------------- reliability (issue 10)

def _one_line(e):
    msg = str(e.value)
    assert msg and '\n' not in msg, msg
    return msg


@pytest.mark.parametrize('bad,msg', [
    ('3', "item ids must be integer indices, got the string '3'"),
    (['3', '4'], "item ids must be integer indices, got the string '3'"),
    (np.array([True, False]), 'item ids must be integer indices, got booleans'),
    (1.5, 'item ids must be integer indices, got 1.5'),
    (np.nan, 'item ids must be integer indices, got nan'),
    (1e300, 'item index 1e+300 is out of range'),
    (20, 'item index 20 is out of range: the model has 20 items (0..19)'),
    ([[0, 1]], 'item ids must be one index or a 1-D list of indices, got a 2-D array'),
    (None, 'item ids must be integer indices, got None'),
])
def test_bad_ids_are_refused_in_one_line(bad, msg):
    m = random_model(n_users=5, n_items=20)
    for call in (lambda: similar_items(m, bad), lambda: fold_in(m, bad),
                 lambda: recommend(m, bad, filter_liked=False) if 'item index 20' not in msg else similar_items(m, bad)):
        with pytest.raises(ValueError) as e: call()
        text = _one_line(e).replace('user', 'item')
        assert msg in text, text


def test_old_exception_types_still_work():
    m = random_model(n_items=20)
    with pytest.raises(IndexError): similar_items(m, 20)
    with pytest.raises(TypeError): similar_items(m, 1.5)


@pytest.mark.parametrize('N', [-1, 2.5, '3', None])
def test_bad_N_is_refused(N):
    m = random_model(n_items=20)
    R = random_likes(50, 20)
    for call in (lambda: similar_items(m, 0, N=N), lambda: recommend(m, 0, R, N=N), lambda: recommend_new_user(m, [1], N=N)):
        with pytest.raises(ValueError, match=r'N must be an integer >= 0, got'): call()


def test_empty_or_unfitted_models_are_refused():
    als = pytest.importorskip('wrmf_nb.als')
    empty = SimpleNamespace(user_vectors=np.zeros((3, 4)), item_vectors=np.zeros((0, 4)), alpha=1.0, regularization=0.1)
    for call in (lambda: similar_items(empty, 0), lambda: similar_items(empty, []), lambda: recommend(empty, 0, filter_liked=False),
                 lambda: fold_in(empty, sparse.csr_matrix((1, 0))), lambda: recommend_new_user(empty, [0])):
        with pytest.raises(ValueError, match=r'the model has no items \(item_vectors is 0 x 4\)'): call()
    nousers = SimpleNamespace(user_vectors=np.zeros((0, 4)), item_vectors=np.ones((5, 4)))
    with pytest.raises(ValueError, match='the model has no users'): recommend(nousers, 0, filter_liked=False)
    for call in (lambda: similar_items(als.ALS(), 0), lambda: recommend(als.ALS(), 0, filter_liked=False),
                 lambda: fold_in(als.ALS(), [0])):
        with pytest.raises(ValueError, match=r'ALS has no `\w+_vectors`: fit the model first') as e: call()
        assert isinstance(e.value, AttributeError)                       # as before
    with pytest.raises(ValueError, match='item_vectors must be a 2-D'): similar_items(np.ones(5), 0)


@pytest.mark.parametrize('side', ['item_vectors', 'user_vectors'])
def test_non_finite_vectors_are_refused(side):
    m = random_model(n_users=10, n_items=30)
    getattr(m, side)[4, 2] = np.nan
    calls = [lambda: recommend(m, 0, filter_liked=False)]
    if side == 'item_vectors':
        calls += [lambda: similar_items(m, 0), lambda: fold_in(m, [1, 2]), lambda: recommend_new_user(m, [1, 2]),
                  lambda: similar_items(m.item_vectors, 0)]
    for call in calls:
        with pytest.raises(ValueError) as e: call()
        msg = _one_line(e)
        assert f'{side} holds NaN or infinite values: 1 bad value(s), the first at (row 4, column 2) = nan' in msg, msg
        assert 'diverged' in msg, msg


@pytest.mark.parametrize('counts,msg', [
    ([1, np.nan, 2], 'counts must hold finite, non-negative values: 1 bad value(s), the first at position 1 (item 5) = nan'),
    ([1, 1, -1], 'the first at position 2 (item 7) = -1.0'),
    ([np.inf, 1, 1], 'the first at position 0 (item 3) = inf'),
])
def test_fold_in_refuses_bad_counts(counts, msg):
    m = random_model(n_items=20)
    for call in (lambda: fold_in(m, [3, 5, 7], counts=counts), lambda: recommend_new_user(m, [3, 5, 7], counts=counts)):
        with pytest.raises(ValueError) as e: call()
        assert msg in _one_line(e)
    R = sparse.csr_matrix((np.array(counts, float), np.array([3, 5, 7]), np.array([0, 0, 3])), shape=(2, 20))
    with pytest.raises(ValueError, match=r'liked must hold finite, non-negative counts: 1 bad value\(s\), the first at \(row 1'):
        fold_in(m, R)


def test_fold_in_refuses_an_empty_history_and_other_misuse():
    m = random_model(n_items=20)
    for call in (lambda: fold_in(m, []), lambda: recommend_new_user(m, []), lambda: recommend_new_user(m, [4, 5], counts=[0, 0])):
        with pytest.raises(ValueError, match='no liked items') as e: call()
        assert 'popular' in _one_line(e)
    np.testing.assert_allclose(fold_in(m, [4, 5], counts=[1, 0]), fold_in(m, [4]))    # a count of 0 is no like, as in fit
    with pytest.raises(ValueError, match='counts is only for a list of liked items'):
        fold_in(m, sparse.csr_matrix((1, 20)), counts=[1])
    for kw in (dict(alpha=np.nan), dict(alpha=-1), dict(regularization=np.inf)):
        with pytest.raises(ValueError, match='must be a finite number >= 0'): fold_in(m, [1], **kw)
    # a batch keeps fit's rule: an empty row gets the zero vector
    np.testing.assert_allclose(fold_in(m, sparse.csr_matrix((2, 20)))[1], 0)


def test_fold_in_of_a_singular_system_is_finite():
    m = SimpleNamespace(item_vectors=np.array([[1., 0, 0], [2., 0, 0]]), alpha=1.0, regularization=0.0)
    x = fold_in(m, [0])
    assert np.isfinite(x).all()
    # min 2 (1 - x0)^2 + (0 - 2 x0)^2 gives x0 = 1/3; x1, x2 are free: the least-norm solution sets them to 0
    np.testing.assert_allclose(x, [1 / 3, 0, 0], atol=1e-12)


def test_one_message_for_one_problem():
    "Bad input is reported in the words of wrmf_nb.checks, as the loss, the split and the metrics do (issue 11)."
    m = random_model(n_users=5, n_items=20)
    with pytest.raises(ValueError, match='ratings is 4 x 20 but the model has 5 users x 20 items'):
        recommend(m, 0, sparse.csr_matrix((4, 20)))
    m.user_vectors = m.user_vectors[:, :3]
    with pytest.raises(ValueError, match='user_vectors has 3 factors but item_vectors has 16'):
        recommend(m, 0, filter_liked=False)


def test_misuse_is_refused_in_one_line():
    m = random_model(n_users=5, n_items=20)
    with pytest.raises(ValueError, match='item index 20 is out of range') as e: similar_items(m, 20)
    _one_line(e)
    with pytest.raises(ValueError, match='needs `ratings`') as e: recommend(m, 0)
    _one_line(e)
    with pytest.raises(ValueError, match='SimpleNamespace has no `item_vectors`: fit the model first'):
        similar_items(SimpleNamespace(), 0)


# ---------------------------------------------------------------- the paper's log confidence (issue 13)

def test_log_confidence_fold_in_equals_oracle_and_the_models_own_sweep():
    "fold_in uses the model's confidence: with 'log' it equals the dense oracle and one more exact user half-sweep."
    als = pytest.importorskip('wrmf_nb.als')
    R = random_likes(60, 40, density=0.15, seed=6)
    R.data = np.round(R.data * 900) + 1                                   # play counts 1..901
    model = als.ALS(num_factors=6, regularization=0.3, alpha=3.0, iterations=3, solver='cholesky', dtype=np.float64,
                    random_state=0, confidence='log', epsilon=2.0).fit(R)
    Y_before = model.item_vectors.copy()
    row = R[7]
    np.testing.assert_allclose(fold_in(model, row.indices, counts=row.data),
                               fold_in_reference(Y_before, row.indices, row.data, 3.0, 0.3, 'log', 2.0), rtol=1e-8)
    folded = fold_in(model, R)
    model.iterations = 1
    model.fit_partial(R)
    np.testing.assert_allclose(folded, model.user_vectors, rtol=1e-6, atol=1e-8)
    # the linear form on the same counts is a different solve
    assert not np.allclose(fold_in(model, R[7:8], confidence='linear')[0], folded[7])
    with pytest.raises(ValueError, match='epsilon'): fold_in(model, [1, 2], confidence='log', epsilon=0)


def test_chapter_7_checks_moved_out():
    "The checks chapter 7 used to show: small cases of each function against the obvious answer."
    from wrmf_nb.similar import normalize_rows, top_n_numpy
    np.testing.assert_allclose(normalize_rows(np.array([[3., 4.], [0., 0.], [0., 2.]])),
                               [[.6, .8], [0, 0], [0, 1]])
    ids, vals = top_n_numpy(np.array([[.1, .9, .5, .7], [4., 1., 3., 2.]]), 2)
    np.testing.assert_array_equal(ids, [[1, 3], [0, 2]]); np.testing.assert_array_equal(vals, [[.9, .7], [4., 3.]])
    np.testing.assert_array_equal(top_n_numpy(np.array([1., 3., 2.]), 10)[0], [[1, 2, 0]])  # N > n: all, sorted
    S = np.random.default_rng(0).normal(size=(50, 1000)).astype(np.float32)
    for N in [1, 5, 10, 128]:
        fast, slow = top_n(S, N), top_n_numpy(S, N)
        np.testing.assert_array_equal(fast[0], slow[0]); np.testing.assert_array_equal(fast[1], slow[1])
    S[:, 500:600] = S[:, 400:500]
    ref = np.argsort(-S, axis=1, kind='stable')
    for N in [1, 5, 10, 128]: np.testing.assert_array_equal(top_n(S, N)[0], ref[:, :N])
    np.testing.assert_array_equal(top_n(np.array([[3., 1, 3, 2]]), 3)[0], [[0, 2, 3]])
    rng = np.random.default_rng(0)
    toy = SimpleNamespace(user_vectors=rng.normal(size=(6, 3)), item_vectors=rng.normal(size=(8, 3)),
                          alpha=10.0, regularization=0.1)
    ids_b, scores_b = similar_items(toy, [3, 0, 7], N=4, include_self=False)
    ids_s, scores_s = similar_items(toy, [3, 0, 7], N=4, include_self=False, block_bytes=1)
    np.testing.assert_allclose(scores_b, scores_s)
    assert ids_b.shape == (3, 4) and not np.any(ids_b == np.array([[3], [0], [7]]))
    np.testing.assert_array_equal(ids_b[0], similar_items(toy, 3, N=5)[0][1:])
    likes = sparse.csr_matrix(np.array([[1, 0, 0, 1, 0, 0, 0, 0], [0] * 8, [1, 1, 1, 1, 1, 1, 1, 0]]
                                       + [[0] * 8] * 3, dtype=float))
    ids, scores = recommend(toy, [2, 1], likes, N=3)
    np.testing.assert_array_equal(ids[0], [7, -1, -1]); assert np.isneginf(scores[0, 1:]).all()
    np.testing.assert_array_equal(recommend(toy, [2, 1], N=3, filter_liked=False)[0][1],
                                  recommend(toy, 1, likes, N=3)[0])
    Y, x = toy.item_vectors, fold_in(toy, [1, 4, 6])
    np.testing.assert_allclose(fold_in(toy, [4, 1, 6, 6]), fold_in_reference(Y, [1, 4, 6], [1, 1, 2], 10, .1))
    np.testing.assert_allclose(fold_in(toy, [1, 4], counts=[3, 1], alpha=2.0),
                               fold_in_reference(Y, [1, 4], [3, 1], 2.0, 0.1))
    batch = fold_in(toy, sparse.csr_matrix(np.array([[0, 1, 0, 0, 1, 0, 1, 0], [2, 0, 0, 0, 0, 0, 0, 1.]])))
    np.testing.assert_allclose(batch[0], x)
    np.testing.assert_allclose(batch[1], fold_in_reference(Y, [0, 7], [2, 1], 10.0, 0.1))
    assert not set(recommend_new_user(toy, [1, 4, 6], N=3)[0]) & {1, 4, 6}
    cats = np.repeat(np.arange(4), 50)
    rng = np.random.default_rng(1)
    clustered = SimpleNamespace(item_vectors=(np.eye(8)[:4] * 5)[cats] + rng.normal(size=(200, 8)))
    noise = SimpleNamespace(item_vectors=rng.normal(size=(200, 8)))
    good, bad = category_agreement(clustered, cats), category_agreement(noise, cats)
    assert good['baseline'] == pytest.approx(0.25)
    assert good['agreement'] > 0.95 and abs(bad['agreement'] - 0.25) < 0.08
