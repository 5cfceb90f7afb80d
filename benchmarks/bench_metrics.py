"""Evaluation cost vs training cost on Sketchfab-shaped data.

Times the metrics of `wrmf_nb.metrics` for every test user of the post's split (20% of the users, 5 held-out
likes each) against one ALS sweep at 40 factors (CG, the default, and Cholesky), on the same data and threads,
and against the post's way of computing precision@k (dense predictions for all users, a full argsort per user).
It also times the floor of any exact AUC: computing every score of every test user (one BLAS call per block of
users, nothing else), which the AUC cannot avoid since it ranks every item.

The timings are taken in rounds, each round timing every entry once, and each entry reports its best round:
on a shared machine this keeps a burst of outside load from landing on one entry only.

    .venv/bin/python benchmarks/bench_metrics.py [--factors 40] [--threads 0] [--rounds 7] [--no-post]
"""
import argparse, time
import numba
import numpy as np
from numba import njit
from wrmf_nb.data import synthetic_likes, threshold_likes, likes_matrix
from wrmf_nb.split import train_test_split
from wrmf_nb.als import ALS
from wrmf_nb import metrics
from wrmf_nb._kernels import _fetch_add, run_workers
from wrmf_nb.checks import model_factors
from wrmf_nb.metrics import calculate_mses, precision_at_k, precisions_at_k, ranking_metrics


_TILE, _BLOCK = 256, 256    # items per tile, users per block: a block's scores for a tile stay in cache


@njit(nogil=True)
def _scores_worker(X, tiles, users, B, counter, S):
    "One worker: every score of the next unclaimed block of B users, tile by tile, and nothing else."
    n, f = users.shape[0], X.shape[1]
    Xb = np.zeros((B, f), X.dtype)
    while True:
        lo = _fetch_add(counter, B)
        if lo >= n: break
        for r in range(lo, min(n, lo + B)): Xb[r - lo] = X[users[r]]
        for tl in range(tiles.shape[0]): np.dot(Xb, tiles[tl], S)


def scores_only(model, users):
    "The floor of any exact AUC: every score of every user in `users`, in the workers of wrmf_nb."
    X, Y = model_factors(model)
    n, f = Y.shape
    nt = -(-n // _TILE)
    P = np.zeros((nt * _TILE, f), Y.dtype); P[:n] = Y
    tiles = np.ascontiguousarray(P.reshape(nt, _TILE, f).transpose(0, 2, 1))
    users, threads = np.asarray(users, dtype=np.int64), numba.get_num_threads()
    B = max(1, min(_BLOCK, -(-len(users) // (2 * threads))))
    counter, S = np.zeros(1, np.int64), np.empty((threads, B, _TILE), X.dtype)
    with metrics._blas_threads(1):
        run_workers(threads, lambda w: _scores_worker(X, tiles, users, B, counter, S[w]))


def post_precision_at_k(model, ratings, k, user_index):
    "The post's recipe: the dense users x items prediction matrix, then a full argsort per evaluated user."
    predictions = model.user_vectors @ model.item_vectors.T
    hits = [len(set(np.argsort(-predictions[u])[:k]) & set(ratings[u].indices)) / k for u in user_index]
    return float(np.mean(hits))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--factors', type=int, default=40)
    ap.add_argument('--threads', type=int, default=0, help='numba threads (0: all)')
    ap.add_argument('--rounds', type=int, default=7)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--no-post', action='store_true', help="skip the post's dense recipe (1.5 GB of predictions)")
    a = ap.parse_args(argv)
    if a.threads: numba.set_num_threads(a.threads)
    likes = likes_matrix(threshold_likes(synthetic_likes(seed=a.seed), 5, 5, verbose=False))
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
    print(f'data: {likes.shape[0]:,} users x {likes.shape[1]:,} items, {likes.nnz:,} likes; '
          f'{len(users):,} test users x 5 test likes; {numba.get_num_threads()} numba threads')
    models = {}
    for solver in ('cg', 'cholesky'):
        m = ALS(num_factors=a.factors, regularization=0.1, alpha=40, iterations=3, solver=solver, random_state=0,
                num_threads=a.threads).fit(train)
        m.iterations = 1
        models[solver] = m                                 # these two keep training: one sweep per timing
    model = ALS(num_factors=a.factors, regularization=0.1, alpha=40, iterations=3, random_state=0,
                num_threads=a.threads).fit(train)          # the model every metric scores, fixed
    mses = lambda: calculate_mses(model, [train, test], users)
    entries = {
        f'one ALS sweep, CG ({a.factors} factors)': lambda: models['cg'].fit_partial(train),
        f'one ALS sweep, Cholesky ({a.factors} factors)': lambda: models['cholesky'].fit_partial(train),
        "precision_at_k, test (the post's definition)": lambda: precision_at_k(model, test, 5, users),
        'precision_at_k, train + test, one ranking': lambda: precisions_at_k(model, [train, test], 5, users),
        'calculate_mses, train + test': mses,
        'p, r, map, ndcg (auc=False) + both MSEs': lambda: (ranking_metrics(model, test, 5, users, auc=False), mses()),
        'p, r, map, ndcg (auc=False) + MSEs, exclude=train': lambda: (ranking_metrics(model, test, 5, users, exclude=train, auc=False), mses()),
        'ALL: p, r, map, ndcg, auc + both MSEs': lambda: (ranking_metrics(model, test, 5, users), mses()),
        'ALL, exclude=train': lambda: (ranking_metrics(model, test, 5, users, exclude=train), mses()),
        'floor of an exact AUC: every score, BLAS only': lambda: scores_only(model, users),
    }
    best = {name: float('inf') for name in entries}
    for fn in entries.values(): fn()                       # compile and warm up
    for _ in range(a.rounds):
        for name, fn in entries.items():
            t = time.perf_counter(); fn(); best[name] = min(best[name], time.perf_counter() - t)
    if not a.no_post:
        t = time.perf_counter(); p_post = post_precision_at_k(model, test, 5, users); t_post = time.perf_counter() - t
        assert abs(p_post - precision_at_k(model, test, 5, users)) < 0.01, 'the recipes disagree beyond ties'
        best["precision_at_k the post's way (dense, argsort), once"] = t_post
    cg = best[f'one ALS sweep, CG ({a.factors} factors)']
    for name, t in best.items():
        print(f'{name:<56} {t*1e3:9.1f} ms  {t / cg:6.2f} CG sweeps')
    print('metrics (exclude=train):', {k: round(v, 4) for k, v in ranking_metrics(model, test, 5, users, exclude=train).items()})


if __name__ == '__main__':
    main()
