"The ALS engine (wrmf_nb.als) against the numpy oracles of chapter 0, and the model's API as the post drives it."
import copy, itertools, os, pickle

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from wrmf_nb import als
from wrmf_nb.als import ALS, check_ratings, half_sweep, cg_solve_reference, gramian, row_blocks
from wrmf_nb.loss import wrmf_loss, solve_vector_dense, reference_half_sweep


def random_counts(n_rows, n_cols, density, seed, empty_every=0, max_count=3):
    "A random CSR matrix of counts 1..max_count; with `empty_every`, every such row (and column) is empty."
    R = sp.random(n_rows, n_cols, density=density, random_state=seed, format='csr')
    R.data = np.ceil(R.data * max_count)
    if empty_every:
        keep_r = (np.arange(n_rows) % empty_every != 0)[:, None]
        keep_c = (np.arange(n_cols) % empty_every != 1)[None, :]
        R = sp.csr_matrix(R.multiply(keep_r).multiply(keep_c))
        R.eliminate_zeros()
    return R


# ---------------------------------------------------------------- kernels vs. numpy oracles

@pytest.mark.parametrize('f,threads,seed', [(1, 1, 0), (5, 2, 1), (8, 3, 2), (13, 4, 3)])
def test_cholesky_equals_oracle_float64(f, threads, seed):
    R = check_ratings(random_counts(37, 23, 0.2, seed, empty_every=5), np.float64)
    rng = np.random.default_rng(seed)
    Y = rng.normal(scale=0.5, size=(23, f))
    alpha, lam = 7.0, 0.3
    X = np.full((37, f), np.nan)
    half_sweep(R, X, Y, lam, alpha, solver='cholesky', blocks=row_blocks(R.indptr, threads, f, 'cholesky'))
    ref = reference_half_sweep(R, Y, alpha, lam)
    np.testing.assert_allclose(X, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    for u in (1, 2, 36):   # and row by row against solve_vector_dense
        row = R[u]
        np.testing.assert_allclose(X[u], solve_vector_dense(Y, row.indices, row.data, alpha, lam), rtol=1e-5, atol=1e-12)


def test_cholesky_float32_close_to_oracle():
    R = check_ratings(random_counts(50, 40, 0.15, 4), np.float32)
    Y = np.random.default_rng(4).normal(scale=0.3, size=(40, 10)).astype(np.float32)
    X = np.zeros((50, 10), np.float32)
    half_sweep(R, X, Y, 0.1, 20.0, solver='cholesky')
    ref = reference_half_sweep(R, Y.astype(np.float64), 20.0, 0.1)
    assert np.abs(X - ref).max() < 1e-3 * np.abs(ref).max()


def test_cg_kernel_float32_close_to_numpy_cg():
    "The float64 comparison is in chapter 3; in float32 the kernel stays within 2e-4 of numpy's CG."
    dtype, tol = np.float32, 2e-4
    R = check_ratings(random_counts(30, 25, 0.25, 5, empty_every=4), dtype)
    rng = np.random.default_rng(5)
    f, alpha, lam = 7, 15.0, 0.2
    Y = rng.normal(scale=0.3, size=(25, f)).astype(dtype)
    X0 = rng.normal(scale=0.1, size=(30, f)).astype(dtype)
    X = X0.copy()
    half_sweep(R, X, Y, lam, alpha, solver='cg', cg_steps=3)
    G = gramian(Y.astype(np.float64), lam)
    ref = np.stack([cg_solve_reference(G, Y[R[u].indices].astype(np.float64), alpha * R[u].data.astype(np.float64),
                                       X0[u], 3) if R[u].nnz else np.zeros(f) for u in range(30)])
    assert np.abs(X - ref).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize('f,dtype,threads', [(80, np.float32, 1), (80, np.float32, 3), (64, np.float64, 2), (65, np.float64, 4)])
def test_cg_in_blocks_of_rows_equals_numpy_cg(f, dtype, threads):
    "Rows CG solves together (f large enough, `cg_rows_together` > 1) take the same steps as numpy's CG, one row at a time."
    assert als.cg_rows_together(f, dtype) > 1
    R = check_ratings(random_counts(150, 60, 0.1, 6, empty_every=7), dtype)   # odd blocks, empty rows
    rng = np.random.default_rng(6)
    Y = rng.normal(scale=0.3, size=(60, f)).astype(dtype)
    X0 = rng.normal(scale=0.1, size=(150, f)).astype(dtype)
    X = half_sweep(R, X0.copy(), Y, 0.2, 15.0, blocks=row_blocks(R.indptr, threads, f, 'cg', als.CG_BLOCK_ROWS))
    G = gramian(Y.astype(np.float64), 0.2)
    ref = np.stack([cg_solve_reference(G, Y[R[u].indices].astype(np.float64), 15.0 * R[u].data.astype(np.float64),
                                       X0[u], 3) if R[u].nnz else np.zeros(f) for u in range(150)])
    tol = 1e-9 if dtype == np.float64 else 2e-3
    assert np.abs(X - ref).max() <= tol * np.abs(ref).max()


def test_row_blocks_align_to_the_rows_solved_together():
    indptr = np.arange(0, 1001, 5)                    # 200 rows, 5 likes each
    for n in (1, 3, 7, 16):
        b = row_blocks(indptr, n, 96, 'cg', 64)
        assert len(b) == n + 1 and b[0] == 0 and b[-1] == 200 and (np.diff(b) >= 0).all()
        assert all(x % 64 == 0 for x in b[:-1]), b


def test_kernels_live_in_their_own_module():
    "als.py is the model and its API: no numba kernel is defined there, and one worker serves both solvers."
    from numba.core.dispatcher import Dispatcher
    from wrmf_nb import _kernels
    defined_here = [k for k, v in vars(als).items() if isinstance(v, Dispatcher) and v.py_func.__module__ == als.__name__]
    assert defined_here == []
    for gone in ('cg_half_sweep', 'cholesky_half_sweep', '_cg_worker', '_cholesky_worker', '_cg_rows', '_cholesky_rows'):
        assert not hasattr(als, gone) and not hasattr(_kernels, gone), gone
    R = check_ratings(random_counts(12, 9, 0.3, 2), np.float32)
    Y = np.random.default_rng(0).random((9, 4), dtype=np.float32)
    for solver in als.SOLVERS: half_sweep(R, np.zeros((12, 4), np.float32), Y, 0.1, 5.0, solver=solver)
    steps_types = {str(sig[8]) for sig in _kernels._sweep_worker.signatures}    # the type of cg_steps
    assert {'none', 'int64'} <= steps_types, steps_types                        # None: compiled for Cholesky


@pytest.mark.parametrize('f', [9, 96])   # 96: CG solves blocks of rows together
def test_results_do_not_depend_on_threads(f):
    R = random_counts(300, 150, 0.05, 7)
    for solver in ('cg', 'cholesky'):
        fits = [ALS(num_factors=f, iterations=3, solver=solver, random_state=1, num_threads=t).fit(R)
                for t in (1, 3, numba.config.NUMBA_NUM_THREADS)]
        for other in fits[1:]:
            np.testing.assert_array_equal(fits[0].user_vectors, other.user_vectors)
            np.testing.assert_array_equal(fits[0].item_vectors, other.item_vectors)


# ---------------------------------------------------------------- training behaviour

@pytest.mark.parametrize('lam', [0.1, 0.0])
def test_loss_never_increases_with_cholesky(lam):
    R = random_counts(80, 60, 0.1, 8, empty_every=9)
    m = ALS(num_factors=6, regularization=lam, alpha=10.0, iterations=12, solver='cholesky', dtype=np.float64,
            random_state=3, calculate_training_loss=True).fit(R)
    loss = m.loss_history
    assert len(loss) == 12 and np.isfinite(loss).all()
    assert all(b <= a * (1 + 1e-9) for a, b in zip(loss, loss[1:])), loss
    np.testing.assert_allclose(loss[-1], wrmf_loss(R, m.user_vectors, m.item_vectors, 10.0, lam), rtol=1e-12)


def test_cg_loss_decreases_and_tracks_cholesky():
    R = random_counts(300, 200, 0.05, 9)
    kw = dict(num_factors=10, regularization=0.1, alpha=20.0, iterations=10, random_state=0, calculate_training_loss=True)
    cg, ch = ALS(solver='cg', **kw).fit(R).loss_history, ALS(solver='cholesky', **kw).fit(R).loss_history
    assert cg[-1] < cg[0] and all(b <= a * (1 + 1e-4) for a, b in zip(cg[2:], cg[3:])), cg
    assert abs(cg[-1] - ch[-1]) < 0.02 * ch[-1]


@pytest.mark.parametrize('solver', ['cg', 'cholesky'])
def test_same_random_state_same_vectors(solver):
    R = random_counts(90, 70, 0.08, 10)
    a = ALS(num_factors=8, iterations=4, solver=solver, random_state=123).fit(R)
    b = ALS(num_factors=8, iterations=4, solver=solver, random_state=123).fit(R)
    c = ALS(num_factors=8, iterations=4, solver=solver, random_state=124).fit(R)
    np.testing.assert_array_equal(a.user_vectors, b.user_vectors)
    np.testing.assert_array_equal(a.item_vectors, b.item_vectors)
    assert not np.array_equal(a.user_vectors, c.user_vectors)
    g = ALS(num_factors=8, iterations=4, solver=solver, random_state=np.random.default_rng(123)).fit(R)
    np.testing.assert_array_equal(a.user_vectors, g.user_vectors)


@pytest.mark.parametrize('solver,dtype', list(itertools.product(['cg', 'cholesky'], [np.float32, np.float64])))
def test_empty_rows_and_columns_get_zero_vectors(solver, dtype):
    R = random_counts(40, 30, 0.2, 11, empty_every=6)
    m = ALS(num_factors=5, iterations=3, solver=solver, dtype=dtype, random_state=0).fit(R)
    empty_users, empty_items = R.getnnz(axis=1) == 0, R.getnnz(axis=0) == 0
    assert empty_users.any() and empty_items.any()
    assert (m.user_vectors[empty_users] == 0).all() and (m.item_vectors[empty_items] == 0).all()
    assert np.isfinite(m.user_vectors).all() and np.isfinite(m.item_vectors).all()
    assert m.user_vectors.dtype == dtype
    # a matrix without a single like, and lambda = 0 with more factors than items: zeros / finite, never NaN.
    # The second case failed for cholesky-float32 before issue 10: the old pivot clamp divided rounding noise by
    # sqrt(eps * d) and the vectors overflowed within 3 sweeps; dependent variables are now dropped (set to 0).
    z = ALS(num_factors=4, iterations=2, solver=solver, dtype=dtype).fit(sp.csr_matrix((5, 3)))
    assert (z.user_vectors == 0).all() and (z.item_vectors == 0).all()
    s = ALS(num_factors=8, regularization=0.0, iterations=3, solver=solver, dtype=dtype, random_state=0).fit(
        sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]])))
    assert np.isfinite(s.user_vectors).all() and np.isfinite(s.item_vectors).all()


def test_callback_sees_every_sweep_and_can_stop():
    seen = []
    def cb(sweep, model):
        seen.append((sweep, model.user_vectors.copy()))
        return sweep == 3
    m = ALS(num_factors=4, iterations=10, random_state=0, callback=cb).fit(random_counts(30, 20, 0.2, 13))
    assert [s for s, _ in seen] == [1, 2, 3] and m.sweeps_done == 3
    assert not np.array_equal(seen[0][1], seen[1][1])


def test_input_is_reused_but_edits_are_noticed():
    R = random_counts(50, 40, 0.1, 14)
    m = ALS(num_factors=4, iterations=1, random_state=0).fit(R)
    cached = m._cache[2]
    m.fit_partial(R)
    assert m._cache[2] is cached                       # same unchanged matrix: no new conversion
    R.data[0] += 1                                     # in-place edit
    m.fit_partial(R)
    assert m._cache[2] is not cached and m._cache[2].data[0] == R.data[0]


def test_caller_matrix_is_not_modified():
    R = sp.csr_matrix((np.array([1., 0., 2., 3.]), np.array([1, 0, 1, 2]), np.array([0, 3, 4])), shape=(2, 3))
    before = (R.data.copy(), R.indices.copy(), R.indptr.copy())    # unsorted, a duplicate and an explicit zero
    ALS(num_factors=3, iterations=1).fit(R)
    for a, b in zip(before, (R.data, R.indices, R.indptr)): np.testing.assert_array_equal(a, b)
    C = check_ratings(R)
    assert C.nnz == 2 and C[0, 1] == 3


def test_any_input_format():
    d = np.array([[0, 2, 0, 1], [1, 0, 0, 0], [0, 0, 3, 1]])
    fit = lambda r: ALS(num_factors=3, iterations=2, random_state=0).fit(r).user_vectors
    ref = fit(sp.csr_matrix(d))
    for form in (d, d.tolist(), sp.coo_matrix(d), sp.csc_matrix(d), sp.csr_array(d), sp.lil_matrix(d)):
        np.testing.assert_array_equal(fit(form), ref)
    np.testing.assert_array_equal(fit(d > 0), fit(sp.csr_matrix((d > 0).astype(float))))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize('bad,msg', [
    (sp.csr_matrix(np.array([[1., 0.], [0., -1.]])), '1 bad value(s), the first at (row 1, column 1) = -1.0'),
    (np.array([[1., np.nan], [np.inf, 2.]]), '2 bad value(s), the first at (row 0, column 1) = nan'),
    (np.array([[1e39, 1.]]), 'too large for float32, the first at (row 0, column 0)'),
    (np.ones(4), '2-D users x items matrix, got 1 dimension'),
    (np.ones((2, 2, 2)), 'got 3 dimension'),
    (np.array([['a', 'b']]), 'must hold numbers'),
])
def test_bad_input_is_refused_clearly(bad, msg):
    with pytest.raises((ValueError, TypeError)) as e: ALS(iterations=1).fit(bad)
    assert msg in str(e.value)


def test_half_sweep_refuses_bad_arguments():
    R = check_ratings(random_counts(6, 5, 0.5, 1), np.float64)
    X, Y = np.zeros((6, 3)), np.ones((5, 3))
    with pytest.raises(ValueError, match=r"solver must be one of \('cg', 'cholesky'\), got 'lu'"):
        half_sweep(R, X, Y, 0.1, 1.0, solver='lu')
    with pytest.raises(ValueError, match='X and Y must have the same dtype and number of factors, got '
                                         'float64 x 3 and float32 x 3'):
        half_sweep(R, X, Y.astype(np.float32), 0.1, 1.0)
    with pytest.raises(ValueError, match='Y must be a C-contiguous 2-D float32 or float64 array'):
        half_sweep(R, X, np.ones((3, 5)).T, 0.1, 1.0)     # a transposed, not C-contiguous, view
    with pytest.raises(ValueError, match='ratings is 6 x 5 but X has 4 rows and Y 5'):
        half_sweep(R, X[:4], Y, 0.1, 1.0)


def test_fit_partial_refuses_other_shapes_and_sizes():
    R = random_counts(20, 10, 0.3, 15)
    m = ALS(num_factors=3, iterations=1).fit(R)
    with pytest.raises(ValueError, match=r'fit_partial got a 20 x 9 matrix but the model was fitted on 20 users x 10 items'):
        m.fit_partial(R[:, :9])
    m.num_factors = 5
    with pytest.raises(ValueError, match='num_factors is 5 but the fitted vectors have 3'): m.fit_partial(R)


@pytest.mark.parametrize('param,value,msg', [
    ('num_factors', 0, 'num_factors must be an integer >= 1'), ('num_factors', 2.5, 'integer'),
    ('regularization', -1, 'regularization must be a finite number >= 0'), ('alpha', np.nan, 'alpha must be'),
    ('iterations', -1, 'iterations must be an integer >= 0'), ('solver', 'lu', "solver must be one of ('cg', 'cholesky')"),
    ('cg_steps', 0, 'cg_steps must be an integer >= 1'), ('dtype', np.int32, 'dtype must be np.float32 or np.float64'),
    ('dtype', 'nonsense', 'dtype must be'), ('num_threads', -2, 'num_threads must be an integer >= 0'),
])
def test_bad_parameters_are_refused_at_fit(param, value, msg):
    m = ALS(iterations=1).set_params(**{param: value})
    with pytest.raises(ValueError, match=msg.replace('(', r'\(').replace(')', r'\)')): m.fit(random_counts(5, 4, 0.5, 0))


# ---------------------------------------------------------------- the post's API

def _mse(model, ratings, user_index):
    "The post's MSE over the given users, from the dense prediction matrix."
    pred = model.predict_for_customers()[user_index]
    return float(((ratings.toarray()[user_index] - pred) ** 2).mean())

def _patk(model, ratings, k, user_index):
    "The post's precision@k: top k over all items, hits / k, mean over users."
    pred = model.predict_for_customers()
    return float(np.mean([len(set(np.argsort(-pred[u])[:k]) & set(ratings[u].indices)) / k for u in user_index]))

def _post_learning_curve(model, train, test, epochs, k=5, user_index=None):
    if not user_index: user_index = range(train.shape[0])
    prev_epoch, rows = 0, []
    for epoch in epochs:
        model.iterations = epoch - prev_epoch
        if not hasattr(model, 'user_vectors'): model.fit(train)
        else: model.fit_partial(train)
        rows.append([epoch, _patk(model, train, k, user_index), _patk(model, test, k, user_index),
                     _mse(model, train, user_index), _mse(model, test, user_index)])
        prev_epoch = epoch
    return model, rows

def _post_grid_search_learning_curve(base_model, train, test, param_grid, user_index=None, patk=5, epochs=range(2, 10, 2)):
    curves = []
    keys, values = zip(*param_grid.items())
    for v in itertools.product(*values):
        params = dict(zip(keys, v))
        this_model = copy.deepcopy(base_model)
        for name, value in params.items(): setattr(this_model, name, value)
        _, rows = _post_learning_curve(this_model, train, test, epochs, k=patk, user_index=user_index)
        curves.append({'params': params, 'rows': rows, 'model': this_model})
    return curves


def test_driven_like_the_post():
    likes = random_counts(120, 80, 0.12, 16, max_count=1)
    train, test = likes.tolil(copy=True), sp.lil_matrix(likes.shape)
    rng = np.random.default_rng(0)
    user_index = [u for u in range(120) if likes[u].nnz >= 4][:30]
    for u in user_index:
        moved = rng.choice(likes[u].indices, 2, replace=False)
        train[u, moved] = 0; test[u, moved] = 1
    train, test = train.tocsr(), test.tocsr()
    base = ALS(random_state=0)
    grid = {'num_factors': [4, 8], 'regularization': [0.0, 1.0], 'alpha': [1, 50]}
    curves = _post_grid_search_learning_curve(base, train, test, grid, user_index=user_index, patk=5)
    assert not hasattr(base, 'user_vectors') and len(curves) == 8
    for c in curves:
        m = c['model']
        assert m.user_vectors.shape == (120, c['params']['num_factors']) and m.sweeps_done == 8
        assert [r[0] for r in c['rows']] == [2, 4, 6, 8]
        assert np.isfinite(np.array(c['rows'])).all()
    best = max(curves, key=lambda c: max(r[2] for r in c['rows']))
    assert max(r[1] for r in best['rows']) > 0.2          # it fits its training likes
    # the last act: train on everything with the best parameters, then item-item cosine similarities
    best_model = ALS(**best['params'], iterations=6).fit(likes)
    sim = best_model.predict_for_items()
    assert sim.shape == (80, 80) and np.isfinite(sim).all()
    liked = likes.getnnz(axis=0) > 0
    np.testing.assert_allclose(np.diag(sim)[liked], 1, rtol=1e-5)


def test_deepcopy_and_pickle_leave_out_the_cache():
    R = random_counts(40, 30, 0.2, 17)
    m = ALS(num_factors=4, iterations=2, random_state=0).fit(R)
    for twin in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert '_cache' not in twin.__dict__
        np.testing.assert_array_equal(twin.user_vectors, m.user_vectors)
        twin.fit_partial(R)
        assert not np.array_equal(twin.user_vectors, m.user_vectors)   # independent copies


def test_save_load_round_trip(tmp_path):
    R = random_counts(40, 30, 0.2, 18)
    m = ALS(num_factors=5, iterations=3, solver='cholesky', dtype=np.float64, random_state=7,
            calculate_training_loss=True, callback=lambda s, mm: None).fit(R)
    path = m.save(tmp_path / 'm')              # vectors, params, loss history: chapter 3 checks them
    back = ALS.load(path)
    assert back.sweeps_done == 3 and back.dtype == np.float64
    m.fit_partial(R); back.fit_partial(R)                       # and training continues identically
    np.testing.assert_array_equal(back.user_vectors, m.user_vectors)
    g = ALS(num_factors=2, iterations=1, random_state=np.random.default_rng(0)).fit(R)
    with pytest.warns(UserWarning, match='cannot be saved'):
        assert ALS.load(g.save(tmp_path / 'g.npz')).random_state is None
    with pytest.raises(AttributeError, match='not trained yet'): ALS().save(tmp_path / 'x')
    with pytest.raises(AttributeError, match='not trained yet'): ALS().predict_for_customers()


def test_dense_helpers_refuse_huge_results(monkeypatch):
    m = ALS(num_factors=2, iterations=1).fit(random_counts(30, 20, 0.2, 19))
    assert m.predict_for_customers().shape == (30, 20)
    monkeypatch.setattr(als, 'MAX_DENSE_BYTES', 1000)
    with pytest.raises(MemoryError, match=r'predict_for_customers\(\) would be a dense 30 x 20 array of 2.4 kB'):
        m.predict_for_customers()
    with pytest.raises(MemoryError, match=r'predict_for_items\(\) would be a dense 20 x 20 array of 1.6 kB'):
        m.predict_for_items()


def test_params_repr_threads_and_progress(capsys):
    m = ALS(num_factors=3, iterations=2, dtype=np.float64, show_progress=True)
    assert set(m.get_params()) == set(ALS._param_names)
    with pytest.raises(ValueError, match="unknown parameter 'factors'; the parameters are num_factors, "):
        m.set_params(factors=3)
    assert repr(m) == 'ALS(num_factors=3, regularization=0.1, alpha=40.0, iterations=2, dtype=np.float64, show_progress=True)'
    before = numba.get_num_threads()
    m.set_params(num_threads=1).fit(random_counts(20, 10, 0.3, 20))
    assert numba.get_num_threads() == before
    assert 'ALS' in capsys.readouterr().err            # the tqdm bar
    m.dtype = np.float32; m.fit_partial(random_counts(20, 10, 0.3, 20))
    assert m.user_vectors.dtype == np.float32


_REPRO = '''
import sys, numpy as np, scipy.sparse as sp
from wrmf_nb.als import ALS
R = sp.random(700, 400, density=0.03, random_state=0, format='csr'); R.data[:] = np.ceil(R.data * 3)
out = []
for solver in ('cg', 'cholesky'):
    for threads in (1, 2):
        m = ALS(num_factors=12, regularization=1.0, alpha=20, iterations=5, random_state=3, solver=solver,
                num_threads=threads, show_progress=False).fit(R)
        out.append(np.concatenate([m.user_vectors, m.item_vectors]))
np.save(sys.argv[1], np.stack(out))
'''

def test_fit_is_bit_identical_compiled_fresh_or_cached_and_on_any_thread_count(tmp_path):
    "The same seed gives the same factors, bit for bit: first run after install (fresh compile) or later (numba cache), 1 or 2 threads."
    import subprocess, sys
    env = {**os.environ, 'NUMBA_CACHE_DIR': str(tmp_path / 'numba-cache'), 'NUMBA_NUM_THREADS': '2'}
    script = tmp_path / 'repro.py'
    script.write_text(_REPRO)
    for name in ('fresh', 'cached'):
        subprocess.run([sys.executable, str(script), str(tmp_path / f'{name}.npy')], env=env, check=True)
    assert any((tmp_path / 'numba-cache').rglob('*.nbi')), 'the first run should have filled the cache'
    fresh, cached = np.load(tmp_path / 'fresh.npy'), np.load(tmp_path / 'cached.npy')
    np.testing.assert_array_equal(fresh, cached)       # compiled in this process vs loaded from the cache
    np.testing.assert_array_equal(fresh[0], fresh[1])  # CG on 1 and 2 threads
    np.testing.assert_array_equal(fresh[2], fresh[3])  # Cholesky on 1 and 2 threads


# ---------------------------------------------------------------- reliability (issue 10)

def _one_line(e):
    msg = str(e.value)
    assert msg and '\n' not in msg, msg
    return msg


def test_save_failure_keeps_the_previous_model(tmp_path, monkeypatch):
    "A save that fails half-way (disk full, Ctrl-C) leaves the previous model as it was, and no temp file."
    R = random_counts(30, 20, 0.2, 21)
    old = ALS(num_factors=3, iterations=1, random_state=0).fit(R)
    path = old.save(tmp_path / 'm.npz')
    new = ALS(num_factors=3, iterations=2, random_state=1).fit(R)
    real = np.savez
    def broken(f, **arrays):
        real(f, **arrays)
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(np, 'savez', broken)
    with pytest.raises(OSError, match='No space'): new.save(path)
    monkeypatch.setattr(np, 'savez', real)
    np.testing.assert_array_equal(ALS.load(path).user_vectors, old.user_vectors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.npz']


@pytest.fixture
def saved(tmp_path):
    m = ALS(num_factors=3, iterations=1, random_state=0).fit(random_counts(12, 9, 0.3, 23))
    return m, m.save(tmp_path / 'good.npz')


_copies = itertools.count()

def _rewrite(path, **changes):
    "Copy of a saved model with some arrays replaced (None: removed)."
    with np.load(path) as z: arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None: arrays.pop(k)
        else: arrays[k] = v
    out = path.with_name(f'bad{next(_copies)}.npz')
    np.savez(out, **arrays)
    return out


def test_load_refuses_what_is_not_a_model(saved, tmp_path):
    import json
    m, path = saved
    params = json.loads(str(np.load(path)['params']))
    U, I = m.user_vectors, m.item_vectors
    cases = [
        (_rewrite(path, user_vectors=U[:, :2]), 'user_vectors has 2 factors but item_vectors has 3'),
        (_rewrite(path, user_vectors=U[:, :2], item_vectors=I[:, :2]), 'the vectors have 2 factors but num_factors is 3'),
        (_rewrite(path, item_vectors=np.where(np.arange(9)[:, None] == 4, np.nan, I)), 'item_vectors holds NaN or infinite values'),
        (_rewrite(path, user_vectors=np.full_like(U, np.inf)), 'user_vectors holds NaN or infinite values'),
        (_rewrite(path, item_vectors=None), 'missing item_vectors'),
        (_rewrite(path, user_vectors=U.ravel()), 'user_vectors must be a 2-D float array'),
        (_rewrite(path, user_vectors=U.astype(np.int64)), 'user_vectors must be a 2-D float array'),
        (_rewrite(path, params=np.array('{not json')), 'params is not valid JSON'),
        (_rewrite(path, params=np.array(json.dumps({**params, 'learning_rate': 1}))), "unknown parameter(s) 'learning_rate'"),
        (_rewrite(path, params=np.array(json.dumps({**params, 'num_factors': 0}))), 'num_factors must be an integer >= 1'),
    ]
    other = tmp_path / 'other.npz'; np.savez(other, a=np.ones(2), b=np.ones(3))
    cases.append((other, 'other.npz is not a wrmf_nb model: it has arrays a, b; expected user_vectors, item_vectors, params'))
    npy = tmp_path / 'vec.npy'; np.save(npy, U)
    cases.append((npy, 'vec.npy is a single numpy array (.npy), not a wrmf_nb model'))
    txt = tmp_path / 'text.npz'; txt.write_text('user,item\n1,2\n')
    cases.append((txt, 'text.npz is not a zip archive'))
    empty = tmp_path / 'empty.npz'; empty.write_bytes(b'')
    cases.append((empty, 'empty.npz is empty'))
    cut = tmp_path / 'cut.npz'; cut.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    cases.append((cut, 'cut.npz is not a complete zip archive'))
    for p, msg in cases:
        with pytest.raises(ValueError) as e: ALS.load(p)
        text = _one_line(e)
        assert msg in text and p.name in text, (p.name, text)
    with pytest.raises(FileNotFoundError): ALS.load(tmp_path / 'missing.npz')


def test_generator_seed_is_not_saved_as_if_reproducible(tmp_path):
    R = random_counts(20, 10, 0.3, 24)
    g = ALS(num_factors=2, iterations=1, random_state=np.random.default_rng(0)).fit(R)
    path = g.save(tmp_path / 'g.npz')
    import json
    params = json.loads(str(np.load(path)['params']))
    assert params['random_state'] is None and 'Generator' in params['random_state_note']
    with pytest.warns(UserWarning, match=r'g.npz: random_state was a numpy.random.Generator.*not reproduce'):
        back = ALS.load(path)
    assert back.random_state is None and back.get_params() == {**g.get_params(), 'random_state': None, 'callback': None}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert ALS.load(ALS(num_factors=2, iterations=1, random_state=5).fit(R).save(tmp_path / 's')).random_state == 5


@pytest.mark.parametrize('solver,alpha', [('cg', 1e30), ('cholesky', 1e36)])   # exact solves survive 1e30 in float32
def test_divergence_raises_a_clear_error(solver, alpha):
    R = random_counts(60, 40, 0.2, 0)
    with pytest.raises(als.ALSDivergedError) as e:
        ALS(num_factors=5, iterations=3, solver=solver, alpha=alpha, random_state=0).fit(R)
    msg = _one_line(e)
    assert isinstance(e.value, ValueError)
    assert 'diverged in sweep 1' in msg and 'vectors' in msg and 'lower alpha' in msg and 'float64' in msg, msg
    big = R.copy(); big.data *= 1e30                     # counts of 1e30 in float32
    with pytest.raises(als.ALSDivergedError, match='scale the counts'):
        ALS(num_factors=5, iterations=3, solver=solver, random_state=0).fit(big)
    ok = ALS(num_factors=5, iterations=3, solver=solver, dtype=np.float64, alpha=alpha, random_state=0).fit(R)
    assert np.isfinite(ok.user_vectors).all()            # the advice works


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_singular_cholesky_systems_stay_finite(dtype):
    "lambda = 0 with more factors than items: every system is singular; dependent variables are dropped, not blown up."
    R = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]]))
    m = ALS(num_factors=8, regularization=0.0, iterations=10, solver='cholesky', dtype=dtype, random_state=0,
            calculate_training_loss=True).fit(R)
    assert np.isfinite(m.user_vectors).all() and np.isfinite(m.item_vectors).all()
    assert np.abs(m.user_vectors).max() < 1e3 and np.isfinite(m.loss_history).all()
    assert m.loss_history[-1] < 1e-4 * R.shape[0] * R.shape[1]     # and they fit: the loss is ~0 (rounding)


def test_refit_after_in_place_edit_keeping_the_sums():
    R = random_counts(50, 40, 0.2, 25, max_count=5)
    m = ALS(num_factors=4, iterations=2, random_state=0).fit(R)
    a, b = np.flatnonzero(R.data == 1)[0], np.flatnonzero(R.data == 5)[0]
    R.data[a], R.data[b] = R.data[b], R.data[a]            # same sums, same pattern, a different matrix
    twin = copy.deepcopy(m)                                # no cache: converts R afresh
    m.fit_partial(R); twin.fit_partial(R)
    np.testing.assert_array_equal(m.user_vectors, twin.user_vectors)
    R.indices[R.indptr[3]:R.indptr[4]] = R.indices[R.indptr[3]:R.indptr[4]][::-1]   # unsorted, same sums
    twin = copy.deepcopy(m)
    m.fit_partial(R); twin.fit_partial(R)
    np.testing.assert_array_equal(m.user_vectors, twin.user_vectors)


def test_fit_refuses_an_empty_shape_and_unfitted_use_is_a_value_error(tmp_path):
    for shape in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match=rf'ratings is {shape[0]} x {shape[1]}: there is nothing to train on'):
            ALS(iterations=1).fit(sp.csr_matrix(shape))
    with pytest.raises(ValueError, match='not trained yet') as e: ALS().save(tmp_path / 'x')
    assert isinstance(e.value, AttributeError) and isinstance(e.value, als.NotFittedError)
    assert not (tmp_path / 'x.npz').exists()


def test_hostile_parameters_and_saved_files(tmp_path):
    with pytest.raises(ValueError, match="random_state must be None, an integer >= 0 or a numpy.random.Generator, got 'abc'"):
        ALS(iterations=1, random_state='abc').fit(random_counts(5, 4, 0.5, 0))
    m = ALS(num_factors=2, iterations=1, random_state=0).fit(random_counts(5, 4, 0.5, 0))
    m.num_factors = np.int64(2)                           # numpy scalars are saved as plain numbers
    assert ALS.load(m.save(tmp_path / 'np.npz')).num_factors == 2
    with pytest.raises(FileNotFoundError, match='no folder'): m.save(tmp_path / 'nope' / 'm.npz')
    (tmp_path / 'dir.npz').mkdir()
    with pytest.raises(IsADirectoryError, match='is a folder'): m.save(tmp_path / 'dir.npz')
    many = tmp_path / 'many.npz'; np.savez(many, **{f'a{i}': np.ones(1) for i in range(9)})
    with pytest.raises(ValueError, match=r'it has arrays a0, a1, a2, a3, a4 and 4 more; expected'): ALS.load(many)


@pytest.mark.parametrize('solver', ['cg', 'cholesky'])
def test_log_confidence_is_linear_confidence_on_log_counts(solver):
    "c = 1 + alpha*log(1 + d/eps) computed in the kernels equals c = 1 + alpha*d' with d' = log(1 + d/eps) given."
    R = random_counts(60, 40, 0.2, 31, max_count=500)
    eps = 3.0
    L = R.copy(); L.data = np.log1p(L.data / eps)
    kw = dict(num_factors=6, regularization=0.5, alpha=2.0, iterations=3, solver=solver, dtype=np.float64, random_state=0)
    a = ALS(confidence='log', epsilon=eps, **kw).fit(R)
    b = ALS(**kw).fit(L)
    np.testing.assert_allclose(a.user_vectors, b.user_vectors, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.item_vectors, b.item_vectors, rtol=1e-9, atol=1e-12)
    assert a.get_params()['confidence'] == 'log' and a.get_params()['epsilon'] == eps


def test_confidence_parameters_are_checked_and_saved(tmp_path):
    R = random_counts(20, 10, 0.3, 32)
    for bad, says in [(dict(confidence='sqrt'), 'confidence must be one of'), (dict(confidence='log', epsilon=0), 'epsilon'),
                      (dict(confidence='log', epsilon=float('nan')), 'epsilon')]:
        with pytest.raises(ValueError, match=says): ALS(iterations=1, **bad).fit(R)
    m = ALS(num_factors=3, iterations=2, confidence='log', epsilon=2.5, random_state=0).fit(R)
    back = ALS.load(m.save(tmp_path / 'm.npz'))
    assert (back.confidence, back.epsilon) == ('log', 2.5)
    np.testing.assert_array_equal(back.fit_partial(R).user_vectors, m.fit_partial(R).user_vectors)


def test_log_confidence_matches_the_numpy_oracle_of_chapter_0():
    "Cholesky half-sweeps with confidence='log' equal chapter 0's reference_half_sweep with the same form; the loss too."
    from wrmf_nb.loss import dense_wrmf_loss
    R = random_counts(50, 30, 0.2, 33, max_count=1000)
    Y = np.random.default_rng(1).random((30, 5))
    Cui = check_ratings(R, np.float64)
    X = np.zeros((50, 5))
    half_sweep(Cui, X, Y, 0.2, 4.0, solver='cholesky', confidence='log', epsilon=5.0)
    np.testing.assert_allclose(X, reference_half_sweep(R, Y, 4.0, 0.2, 'log', 5.0), rtol=1e-9, atol=1e-12)
    assert not np.allclose(X, reference_half_sweep(R, Y, 4.0, 0.2))                 # the linear form differs
    kw = dict(confidence='log', epsilon=5.0)
    assert wrmf_loss(R, X, Y, 4.0, 0.2, **kw) == pytest.approx(dense_wrmf_loss(R, X, Y, 4.0, 0.2, **kw), rel=1e-10)
    m = ALS(num_factors=5, alpha=4.0, regularization=0.2, iterations=3, dtype=np.float64, random_state=0,
            calculate_training_loss=True, **kw).fit(R)
    assert m.loss_history[-1] == pytest.approx(wrmf_loss(R, m.user_vectors, m.item_vectors, 4.0, 0.2, **kw))


# ---------------------------------------------------------------- moved from chapter 3 (the reading path keeps one check per step)

def test_check_ratings_copies_into_float32_csr():
    R = check_ratings(np.array([[0, 2, 0], [1, 0, 0]]))
    assert R.dtype == np.float32 and R.nnz == 2
    np.testing.assert_array_equal(R.toarray(), [[0, 2, 0], [1, 0, 0]])


def test_numpy_cg_converges_faster_from_a_warm_start():
    "Chapter 3's table: never worse with more steps, 3 warm steps remove most of the error, f steps solve."
    rng = np.random.default_rng(0)
    f, n_items, alpha, lam = 20, 300, 40.0, 0.1
    Y = rng.normal(scale=0.1, size=(n_items, f))
    idx = rng.choice(n_items, size=15, replace=False)
    d = np.ones(15)
    G = gramian(Y, lam)
    exact = solve_vector_dense(Y, idx, d, alpha, lam)
    warm = solve_vector_dense(Y + rng.normal(scale=0.01, size=Y.shape), idx, d, alpha, lam)
    err = lambda x0, s: (np.linalg.norm(cg_solve_reference(G, Y[idx], alpha * d, x0, s) - exact)
                         / np.linalg.norm(exact))
    steps = [0, 1, 2, 3, 5, 8, 13, 20]
    cold, hot = [err(np.zeros(f), s) for s in steps], [err(warm, s) for s in steps]
    assert all(b <= a * 1.0001 for a, b in zip(hot, hot[1:]))
    assert hot[3] < 0.3 * hot[0] and hot[3] < cold[3]
    assert cold[-1] < 1e-6 and hot[-1] < 1e-6


def test_row_blocks_edge_cases():
    indptr = np.array([0, 100, 101, 102, 103, 104, 105])
    np.testing.assert_array_equal(row_blocks(indptr, 1, factors=4), [0, 6])
    np.testing.assert_array_equal(row_blocks(np.array([0]), 3, factors=4), [0, 0, 0, 0])


def test_run_workers_reraises_the_first_error():
    from wrmf_nb._kernels import run_workers
    with pytest.raises(ZeroDivisionError, match='division by zero'):
        run_workers(2, lambda k: 1 / (k - 1))


def test_add_liked_residual_and_cg_block_with_f_steps():
    from wrmf_nb._kernels import _add_liked, _cg_block
    rng = np.random.default_rng(1)
    Yt, v, at = rng.normal(size=(9, 7)), rng.normal(size=7), rng.uniform(1, 5, size=6)
    rows = np.array([4, 0, 8, 3, 3, 1], dtype=np.int32)
    acc = np.zeros(7); _add_liked(rows, at, Yt, v, acc, True)
    np.testing.assert_allclose(acc, Yt[rows].T @ (1 + at - at * (Yt[rows] @ v)), rtol=1e-12, atol=1e-12)
    f, lam, alpha = 7, 0.1, 3.0
    G = gramian(Yt, lam)
    exact = solve_vector_dense(Yt, rows, np.ones(6), alpha, lam)
    indptr = np.array([0, 6])
    X = np.zeros((1, f)); _cg_block(indptr, rows, alpha * np.ones(6), Yt, G, X, 0, 1, 2 * f, *np.empty((3, 1, f)), np.empty(1))
    np.testing.assert_allclose(X[0], exact, rtol=1e-8, atol=1e-10)


def test_half_sweep_cg_with_2f_steps_is_exact_and_empty_rows_are_zero():
    rng = np.random.default_rng(2)
    R = sp.random(40, 30, density=0.2, random_state=3, format='csr')
    R.data = np.ceil(3 * R.data)
    R = check_ratings(R.multiply((np.arange(40) % 7 != 0)[:, None]), np.float64)
    f, alpha, lam = 6, 10.0, 0.1
    Y, X0 = rng.normal(scale=0.3, size=(30, f)), rng.normal(scale=0.1, size=(40, f))
    exact = reference_half_sweep(R, Y, alpha, lam)
    X = half_sweep(R, X0.copy(), Y, lam, alpha, cg_steps=2 * f)
    np.testing.assert_allclose(X, exact, rtol=1e-8, atol=1e-10)
    for solver in als.SOLVERS:
        X = half_sweep(R, X0.copy(), Y, lam, alpha, solver=solver)
        np.testing.assert_array_equal(X[np.diff(R.indptr) == 0], np.zeros((6, f)))


def test_a_first_fit_keeps_its_promises():
    likes = sp.random(300, 200, density=0.04, random_state=5, format='csr')
    likes.data[:] = 1
    likes = sp.csr_matrix(likes.multiply(~(np.arange(300)[:, None] % 50 == 0)))
    model = ALS(num_factors=16, alpha=20.0, iterations=8, random_state=0, calculate_training_loss=True).fit(likes)
    assert model.user_vectors.shape == (300, 16) and model.item_vectors.dtype == np.float32
    assert np.abs(model.user_vectors[::50]).max() == 0
    assert len(model.loss_history) == 8 and model.loss_history[-1] < model.loss_history[0]
    S = model.predict_for_items()
    assert S.shape == (200, 200) and np.isfinite(S).all()
    scores = model.predict_for_customers()
    np.testing.assert_allclose(scores[3], model.item_vectors @ model.user_vectors[3], rtol=1e-5)


def test_save_adds_the_suffix_and_load_restores_params_and_history(tmp_path):
    m = ALS(num_factors=4, iterations=3, random_state=0, calculate_training_loss=True).fit(random_counts(30, 20, 0.2, 5))
    p = m.save(tmp_path / 'model')
    assert p.name == 'model.npz'
    back = ALS.load(p)
    assert back.loss_history == m.loss_history
    assert back.get_params() == {**m.get_params(), 'callback': None}


def test_repr_shows_the_four_main_parameters_and_what_differs():
    assert repr(ALS(solver='cholesky', dtype=np.float64)) == (
        "ALS(num_factors=40, regularization=0.1, alpha=40.0, iterations=15, solver='cholesky', dtype=np.float64)")
    m = ALS(num_factors=8)
    assert not hasattr(m, 'user_vectors') and m.set_params(iterations=3).iterations == 3
