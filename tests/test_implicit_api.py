"""implicit 0.7's model API on wrmf_nb's ALS (issue 15): explain, partial fits, filters, batch calls, recalculate_user.

The checkerboard tests follow implicit's own `test_partial_fit`: every even user likes every even item and
every odd user every odd item, the diagonal withheld."""
import numpy as np
import pytest
import scipy.sparse as sp

from wrmf_nb.als import ALS, AlternatingLeastSquares
from wrmf_nb.similar import fold_in, recommend, similar_items
from wrmf_nb.loss import confidence


def checkerboard(n=50):
    "n x n likes: user u likes item i when u and i have the same parity and u != i."
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing='ij')
    return sp.csr_matrix(((u % 2 == i % 2) & (u != i)).astype(np.float64))


@pytest.fixture(scope='module')
def board():
    R = checkerboard(50)
    m = ALS(num_factors=3, regularization=0.01, alpha=2.0, iterations=15, solver='cholesky',
            dtype=np.float64, random_state=0, num_threads=1).fit(R)
    return m, R


@pytest.fixture(scope='module')
def small():
    rng = np.random.default_rng(3)
    R = sp.random(60, 40, density=0.15, random_state=4, format='csr')
    R.data = rng.integers(1, 6, R.nnz).astype(np.float64)
    kw = dict(num_factors=6, regularization=0.1, iterations=6, dtype=np.float64, random_state=1, num_threads=1)
    return ALS(alpha=5.0, **kw).fit(R), ALS(alpha=3.0, confidence='log', epsilon=0.5, **kw).fit(R), R


def test_factors_aliases_absent_before_fit(small):
    m = ALS()
    assert not hasattr(m, 'user_vectors') and not hasattr(m, 'user_factors') and not hasattr(m, 'item_factors')
    fitted = small[0]
    assert fitted.user_factors is fitted.user_vectors and fitted.item_factors is fitted.item_vectors
    with pytest.raises(AttributeError): fitted.user_factors = np.zeros((1, 1))


@pytest.mark.parametrize('which', [0, 1])
def test_explain_sums_to_recalculated_score(small, which):
    m, R = small[which], small[2]
    for u, item in ((0, 3), (7, 11), (13, 0)):
        total, top, W = m.explain(u, R, item, N=1000)
        liked = set(R[u].indices.tolist())
        assert {j for j, _ in top} == liked                  # exactly the liked items
        x = fold_in(m, R[u])[0]
        np.testing.assert_allclose(total, x @ m.item_vectors[item], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sum(c for _, c in top), total, rtol=1e-9, atol=1e-12)
        contribs = [c for _, c in top]
        assert contribs == sorted(contribs, reverse=True)
        t2, top2, W2 = m.explain(u, R[u], item, user_weights=W, N=2)   # the user's row, reused weights
        assert W2 is W and top2 == top[:2] and np.isclose(t2, total)


def test_explain_uses_the_log_confidence(small):
    lin, log, R = small
    u, item = 5, 2
    total, top, _ = log.explain(u, R, item, N=1000)
    # a contribution is c_uj * y_i^T W y_j: with the log form c_uj = 1 + alpha log(1 + d/eps)
    Y = log.item_vectors
    idx, d = R[u].indices, R[u].data
    c = confidence(d, log.alpha, 'log', log.epsilon)
    A = Y.T @ Y + (Y[idx].T * (c - 1)) @ Y[idx] + log.regularization * np.eye(Y.shape[1])
    want = (Y[idx] @ np.linalg.solve(A, Y[item])) * c
    got = dict(top)
    np.testing.assert_allclose([got[j] for j in idx], want, rtol=1e-8)


def test_partial_fit_users_checkerboard(board):
    m, R = board
    m = __import__('copy').deepcopy(m)
    assert m.recommend(0, R[0], N=1)[0][0] % 2 == 0
    m.partial_fit_users([0], R[1])                       # user 0 now has user 1's (odd) likes
    ids, _ = m.recommend(0, R[1], N=5)
    assert ids[0] == 1                                   # the one odd item user 1 has not liked
    assert all(m.recommend(0, R[1], N=5, filter_already_liked_items=False)[0] % 2 == 1)
    m.partial_fit_users([100], R[1])                     # a new user, far beyond the current 50
    assert m.user_vectors.shape == (101, 3) and not m.user_vectors[50:100].any()
    ids, _ = m.recommend(100, R[1], N=5)
    assert ids[0] == 1


def test_partial_fit_items_checkerboard(board):
    m, R = board
    m = __import__('copy').deepcopy(m)
    Ciu = R.T.tocsr()
    m.partial_fit_items([0], Ciu[1])                     # item 0 now liked by item 1's (odd) users
    ids, _ = m.similar_items(0, N=6)
    assert ids[0] == 0 and all(ids[1:] % 2 == 1)
    m.partial_fit_items([100], Ciu[1])                   # a new item
    assert m.item_vectors.shape == (101, 3) and not m.item_vectors[50:100].any()
    ids, _ = m.similar_items(100, N=6)
    rest = [i for i in ids[1:] if i != 0]                # item 0 now has the same vector
    assert ids[0] == 100 and all(np.array(rest) % 2 == 1)
    r1 = sp.csr_matrix((R[1].data, R[1].indices, R[1].indptr), shape=(1, 101))
    assert set(m.recommend(1, r1, N=3)[0]) == {0, 1, 100}  # odd user 1: its unliked odd item, 0, 100


@pytest.mark.parametrize('which', [0, 1])
def test_partial_fit_is_the_exact_solve(small, which):
    m0, R = small[which], small[2]
    m = __import__('copy').deepcopy(m0)
    users = np.array([4, 9, 2])
    m.partial_fit_users(users, R[users])
    np.testing.assert_allclose(m.user_vectors[users], fold_in(m0, R[users]), rtol=1e-6, atol=1e-9)
    others = np.setdiff1d(np.arange(R.shape[0]), users)
    np.testing.assert_array_equal(m.user_vectors[others], m0.user_vectors[others])
    items = np.array([0, 5])
    Ciu = R.T.tocsr()
    m.partial_fit_items(items, Ciu[items])
    want = fold_in(m.user_vectors, Ciu[items], alpha=m.alpha, regularization=m.regularization,
                   confidence=m.confidence, epsilon=m.epsilon)
    np.testing.assert_allclose(m.item_vectors[items], want, rtol=1e-6, atol=1e-9)


def test_partial_fit_refuses_misaligned_rows(small):
    m = __import__('copy').deepcopy(small[0])
    with pytest.raises(ValueError, match='row'): m.partial_fit_users([1, 2], small[2][[1]])
    with pytest.raises(ValueError, match='columns'): m.partial_fit_users([1], sp.csr_matrix((1, 3)))


@pytest.mark.parametrize('which', [0, 1])
def test_recalculate_user_equals_fold_in(small, which):
    m, R = small[which], small[2]
    users = np.array([3, 8, 21])
    x = fold_in(m, R[users])
    ids, scores = m.recommend(users, R[users], N=5, recalculate_user=True)
    S = x @ m.item_vectors.T
    for k, u in enumerate(users):
        S[k, R[u].indices] = -np.inf
    want = np.argsort(-S, axis=1, kind='stable')[:, :5]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(S, want, 1), rtol=1e-6)
    i1, s1 = m.recommend(8, R[8], N=5, recalculate_user=True)
    np.testing.assert_array_equal(i1, ids[1]); np.testing.assert_allclose(s1, scores[1])


def test_filters_single_and_batch(small):
    m, _, R = small
    users, bad = np.arange(0, 60, 7), [1, 2, 3, 17, 30]
    ids, scores = m.recommend(users, R[users], N=8, filter_items=bad)
    assert ids.shape == (len(users), 8) and not np.isin(ids, bad).any()
    for k, u in enumerate(users):
        assert not np.isin(ids[k], R[u].indices).any()
        i1, s1 = m.recommend(u, R[u], N=8, filter_items=bad)
        np.testing.assert_array_equal(i1, ids[k]); np.testing.assert_allclose(s1, scores[k])
        i2, _ = recommend(m, u, R, N=8, filter_items=bad)         # the function agrees
        np.testing.assert_array_equal(i2, i1)
    cand = [0, 4, 5, 9, 12, 33, 39]
    ids, scores = m.recommend(users, R[users], N=4, items=cand)
    assert np.isin(ids[ids >= 0], cand).all()
    for k, u in enumerate(users):
        i1, s1 = m.recommend(u, R[u], N=4, items=cand)
        np.testing.assert_array_equal(i1, ids[k])
        S = m.user_vectors[u] @ m.item_vectors[cand].T
        ok = ~np.isin(cand, R[u].indices)
        want = np.array(cand)[ok][np.argsort(-S[ok], kind='stable')][:4]
        np.testing.assert_array_equal(i1[:len(want)], want)
        assert (i1[len(want):] == -1).all()
    ids, _ = m.recommend(users, R[users], N=4, items=cand, filter_already_liked_items=False)
    assert (ids >= 0).all() and np.isin(ids, cand).all()


def test_similar_items_and_users(small):
    m, _, R = small
    ids, scores = m.similar_items(3, N=5)
    assert ids[0] == 3 and np.isclose(scores[0], 1)
    np.testing.assert_array_equal(ids, similar_items(m, 3, N=5)[0])
    ids, _ = m.similar_items(3, N=5, filter_items=[3, ids[1]])
    assert 3 not in ids and len(ids) == 5
    b_ids, b_scores = m.similar_items([3, 7], N=5, filter_items=[0, 1])
    for k, q in enumerate([3, 7]):
        i1, s1 = similar_items(m, q, N=5, filter_items=[0, 1])
        np.testing.assert_array_equal(b_ids[k], i1); np.testing.assert_allclose(b_scores[k], s1)
        assert b_ids[k][0] == q and not np.isin(b_ids[k], [0, 1]).any()
    ids, scores = m.similar_users(4, N=3)
    assert ids[0] == 4 and np.isclose(scores[0], 1) and ids.shape == (3,)
    Xn = m.user_vectors / np.linalg.norm(m.user_vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, Xn[ids] @ Xn[4], rtol=1e-6)


def test_implicit_constructor_shim():
    R = checkerboard(20)
    m = AlternatingLeastSquares(factors=4, regularization=0.05, alpha=2.0, iterations=3, use_cg=False,
                                random_state=0)
    assert isinstance(m, ALS) and (m.num_factors, m.solver, m.alpha) == (4, 'cholesky', 2.0)
    m.fit(R, show_progress=False)
    assert m.user_factors.shape == (20, 4)
    assert AlternatingLeastSquares().num_factors == 100     # implicit's defaults
    assert m.factors == 4


def test_recommend_takes_the_whole_matrix_too(small):
    m, _, R = small
    users = np.array([2, 5])
    for kw in ({}, {'recalculate_user': True}):
        a = m.recommend(users, R, N=4, **kw)
        b = m.recommend(users, R[users], N=4, **kw)
        np.testing.assert_array_equal(a[0], b[0]); np.testing.assert_allclose(a[1], b[1])
    with pytest.raises(ValueError, match='rows'): m.recommend(users, R[:3], N=4)


def test_appendix_code_runs_on_both_libraries():
    "Appendix E's code cell runs on implicit 0.7 (the import swapped back) and gives the same shapes."
    import json, pathlib
    implicit = pytest.importorskip('implicit.als')
    nb = json.loads((pathlib.Path(__file__).parents[1] / 'nbs' / '14_implicit.ipynb').read_text())
    src = next(''.join(c['source']) for c in nb['cells']
               if c['cell_type'] == 'code' and 'AlternatingLeastSquares(' in ''.join(c['source']))
    ours, theirs = {}, {}
    exec(src, ours)
    exec(src.replace('from wrmf_nb.als import', 'from implicit.als import'), theirs)
    assert type(theirs['model']).__module__.startswith('implicit')
    for k in ('ids', 'scores', 'related', 'neighbours', 'batch'):
        assert np.shape(ours[k]) == np.shape(theirs[k]), k
    assert len(ours['top']) == len(theirs['top']) == 3
