"""Evaluation cost vs training cost on Sketchfab-shaped data.

Times the metrics of `wrmf_nb.metrics` for every test user of the post's split (20% of the users, 5 held-out
likes each) against one ALS sweep at 40 factors (CG, the default, and Cholesky), on the same data and threads,
and against the post's way of computing precision@k (dense predictions for all users, a full argsort per user).

    .venv/bin/python benchmarks/bench_metrics.py [--factors 40] [--threads 0] [--repeat 3] [--no-post]
"""
import argparse, time
import numba
import numpy as np
from wrmf_nb.data import synthetic_likes, threshold_likes, likes_matrix
from wrmf_nb.split import train_test_split
from wrmf_nb.als import ALS
from wrmf_nb.metrics import calculate_mses, precision_at_k, precisions_at_k, ranking_metrics


def best_of(fn, repeat):
    "Smallest wall time of `repeat` calls (after one warm-up call)."
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)


def post_precision_at_k(model, ratings, k, user_index):
    "The post's recipe: the dense users x items prediction matrix, then a full argsort per evaluated user."
    predictions = model.user_vectors @ model.item_vectors.T
    hits = [len(set(np.argsort(-predictions[u])[:k]) & set(ratings[u].indices)) / k for u in user_index]
    return float(np.mean(hits))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--factors', type=int, default=40)
    ap.add_argument('--threads', type=int, default=0, help='numba threads (0: all)')
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--no-post', action='store_true', help="skip the post's dense recipe (1.5 GB of predictions)")
    a = ap.parse_args(argv)
    if a.threads: numba.set_num_threads(a.threads)
    likes = likes_matrix(threshold_likes(synthetic_likes(seed=a.seed), 5, 5, verbose=False))
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
    print(f'data: {likes.shape[0]:,} users x {likes.shape[1]:,} items, {likes.nnz:,} likes; '
          f'{len(users):,} test users x 5 test likes; {numba.get_num_threads()} numba threads')
    sweeps = {}
    for solver in ('cg', 'cholesky'):
        m = ALS(num_factors=a.factors, regularization=0.1, alpha=40, iterations=3, solver=solver, random_state=0,
                num_threads=a.threads).fit(train)
        m.iterations = 1
        sweeps[solver] = best_of(lambda: m.fit_partial(train), a.repeat)
        if solver == 'cg': model = m
    t_all = best_of(lambda: (ranking_metrics(model, test, 5, users), calculate_mses(model, [train, test], users)), a.repeat)
    rows = [
        (f'one ALS sweep, CG ({a.factors} factors)', sweeps['cg']),
        (f'one ALS sweep, Cholesky ({a.factors} factors)', sweeps['cholesky']),
        ('precision_at_k, test (the post\'s definition)', best_of(lambda: precision_at_k(model, test, 5, users), a.repeat)),
        ('precision_at_k, train + test, one ranking', best_of(lambda: precisions_at_k(model, [train, test], 5, users), a.repeat)),
        ('precision_at_k, test, exclude=train', best_of(lambda: precision_at_k(model, test, 5, users, exclude=train), a.repeat)),
        ('calculate_mses, train + test', best_of(lambda: calculate_mses(model, [train, test], users), a.repeat)),
        ('ALL: ranking_metrics (p, r, map, ndcg, auc) + both MSEs', t_all),
        ('ALL, with exclude=train', best_of(lambda: (ranking_metrics(model, test, 5, users, exclude=train),
                                                     calculate_mses(model, [train, test], users)), a.repeat)),
    ]
    if not a.no_post:
        t = time.perf_counter(); p_post = post_precision_at_k(model, test, 5, users); t_post = time.perf_counter() - t
        assert abs(p_post - precision_at_k(model, test, 5, users)) < 0.01, 'the recipes disagree beyond ties'
        rows.append(("precision_at_k the post's way (dense, argsort), once", t_post))
    for name, t in rows: print(f'{name:<58} {t*1e3:9.1f} ms')
    print(f'all metrics / one CG sweep = {t_all / sweeps["cg"]:.2f};  / one Cholesky sweep = {t_all / sweeps["cholesky"]:.2f}')
    print('metrics (exclude=train):', {k: round(v, 4) for k, v in ranking_metrics(model, test, 5, users, exclude=train).items()})


if __name__ == '__main__':
    main()
