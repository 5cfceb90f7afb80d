#!/usr/bin/env python
"""wrmf_nb against implicit 0.7.3 on the HetRec 2011 Last.fm 2K play counts (the real-data chapter's table).

Both libraries train on the 5/5 core of the play counts with the paper's log confidence,
c = 1 + alpha*log(1 + d/epsilon): wrmf_nb computes it in its kernels from the raw counts
(confidence='log'); implicit, whose confidence is the stored value plus one, gets the matrix of
alpha*log(1 + d/epsilon) values. Same hyper-parameters, threads and initial vectors. Reports
milliseconds per sweep (users + items: the best of --repeats fits, divided by the sweeps) of both solvers and p@10 / NDCG@10 on 5 held-out
artists of every user (training artists excluded), and writes them to benchmarks/results/lastfm.json.

Needs the data: set WRMF_NB_DATA to the folder holding hetrec2011-lastfm-2k/ (or run fetch_lastfm()).

The defaults are the real-data chapter's best log-confidence configuration (64 factors, lambda 100, alpha 3).

Usage:  python benchmarks/bench_lastfm.py [--factors 64] [--sweeps 15] [--threads 0] [--out PATH]
"""
import argparse, json, os, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

import numpy as np
import scipy.sparse as sp

from bench_als import implicit_model, machine   # noqa: E402  (same directory)


def data(seed=0):
    from wrmf_nb.data import load_lastfm, threshold_likes, build_likes
    from wrmf_nb.split import train_test_split
    core = threshold_likes(load_lastfm(verbose=False), 5, 5, verbose=False)
    likes, _ = build_likes(core, counts='plays')
    return train_test_split(likes, 5, seed=seed)


def quality(X, Y, train, test, users, k=10):
    from types import SimpleNamespace
    from wrmf_nb.metrics import ranking_metrics
    r = ranking_metrics(SimpleNamespace(user_vectors=X, item_vectors=Y), test, k=k, user_index=users,
                        exclude=train, auc=False)
    return round(r['precision'], 4), round(r['ndcg'], 4)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--factors', type=int, default=64)
    p.add_argument('--regularization', type=float, default=100.0)
    p.add_argument('--alpha', type=float, default=3.0)
    p.add_argument('--epsilon', type=float, default=1.0)
    p.add_argument('--sweeps', type=int, default=15)
    p.add_argument('--threads', type=int, default=0, help='threads for both libraries; 0 = all cores')
    p.add_argument('--repeats', type=int, default=5, help='timed fits per library and solver (best kept)')
    p.add_argument('--out', default=str(Path(__file__).with_name('results') / 'lastfm.json'))
    a = p.parse_args(argv)
    from threadpoolctl import threadpool_limits
    from wrmf_nb.als import ALS
    threads = a.threads or os.cpu_count()
    train, test, users = data()
    C = train.astype(np.float32, copy=True)
    C.data = a.alpha * np.log1p(C.data / a.epsilon)                  # implicit adds the 1 itself
    rows = []
    for solver in ('cg', 'cholesky'):
        kw = dict(num_factors=a.factors, regularization=a.regularization, alpha=a.alpha, solver=solver,
                  confidence='log', epsilon=a.epsilon, num_threads=threads, random_state=0)
        ALS(iterations=1, **kw).fit(train)                                 # compile
        t_w, t_i = [], []
        for _ in range(a.repeats):                                         # interleaved
            t0 = time.perf_counter(); m = ALS(iterations=a.sweeps, **kw).fit(train)
            t_w.append((time.perf_counter() - t0) / a.sweeps)
            with threadpool_limits(1, 'blas'):
                im = implicit_model(a.factors, solver == 'cg', a.sweeps, threads, 0, a.regularization)
                t0 = time.perf_counter(); im.fit(C, show_progress=False)
            t_i.append((time.perf_counter() - t0) / a.sweeps)
        for lib, t, (X, Y) in (('wrmf_nb', t_w, (m.user_vectors, m.item_vectors)),
                               ('implicit 0.7.3', t_i, (im.user_factors, im.item_factors))):
            p10, ndcg = quality(X, Y, train, test, users)
            rows.append({'library': f'{lib}, {solver}', 'ms per sweep': round(1000 * min(t), 2),
                         'p@10': p10, 'NDCG@10': ndcg})
    setup = (f"{train.shape[0]:,} users x {train.shape[1]:,} artists, {train.nnz:,} training pairs; "
             f"log confidence (alpha={a.alpha:g}, epsilon={a.epsilon:g}), {a.factors} factors, "
             f"lambda={a.regularization:g}, {a.sweeps} sweeps, {threads} threads; {machine()}")
    out = {'setup': setup, 'rows': rows, 'command': 'python benchmarks/bench_lastfm.py',
           'date': time.strftime('%Y-%m-%d')}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    print(setup)
    print('| library | ms per sweep | p@10 | NDCG@10 |\n|---|---:|---:|---:|')
    for r in rows: print(f"| {r['library']} | {r['ms per sweep']} | {r['p@10']} | {r['NDCG@10']} |")


if __name__ == '__main__':
    main()
