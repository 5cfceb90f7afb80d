"""The post's whole grid search on the default Sketchfab-shaped data, timed, checkpointed and saved.

num_factors 10, 20, 40, 80, 120 x regularization 0, 1e-5, 1e-3, 0.1, 10, 100 x alpha 1, 10, 50, 100, 500, 1000
(180 configurations), evaluated at epochs 2, 4, ..., 38 with p@5 and MSE on the post's split (20% of the users,
5 held-out likes each). Results go to wrmf_nb/data/grid_sketchfab_synthetic.json (package data), which chapters 05 and 06 read.

    .venv/bin/python benchmarks/bench_grid.py                       # the full grid, all cores
    .venv/bin/python benchmarks/bench_grid.py --quick --no-save     # 8 configurations, a smoke test
    .venv/bin/python benchmarks/bench_grid.py --n-jobs 1 --threads 2

The checkpoint (default wrmf-nb-out/grid_sketchfab_synthetic.jsonl) makes an interrupted run resumable:
run the same command again. Delete it (or pass --fresh) to time a run from scratch.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numba

from wrmf_nb.als import ALS
from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
from wrmf_nb.search import (POST_GRID, available_cores, best_params, checkpoint_lock, grid_search_learning_curve,
                            print_log, save_curves, threads_per_worker)
from wrmf_nb.split import train_test_split

ROOT = Path(__file__).resolve().parents[1]
QUICK_GRID = {'num_factors': [10, 40], 'regularization': [0.1, 10.0], 'alpha': [10, 50]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n-jobs', type=int, default=0, help='worker processes (0: one per core)')
    ap.add_argument('--threads', type=int, default=0, help='numba threads per worker (0: cores // n_jobs)')
    ap.add_argument('--checkpoint', default=str(ROOT / 'wrmf-nb-out' / 'grid_sketchfab_synthetic.jsonl'))
    ap.add_argument('--fresh', action='store_true', help='delete the checkpoint first (time a run from scratch)')
    ap.add_argument('--out', default=str(ROOT / 'wrmf_nb' / 'data' / 'grid_sketchfab_synthetic.json'))
    ap.add_argument('--no-save', action='store_true', help='do not write the results file')
    ap.add_argument('--quick', action='store_true', help=f'a small grid instead of the post\'s: {QUICK_GRID}')
    ap.add_argument('--epochs', type=int, nargs=3, default=[2, 40, 2], metavar=('START', 'STOP', 'STEP'))
    ap.add_argument('--verbose', action='store_true', help="print every configuration's table")
    ap.add_argument('--seed', type=int, default=42, help='synthetic_likes seed')
    a = ap.parse_args(argv)

    cores = available_cores()
    n_jobs = a.n_jobs or cores
    threads = a.threads or threads_per_worker(n_jobs, cores)
    grid = QUICK_GRID if a.quick else POST_GRID
    epochs = range(*a.epochs)
    ck = Path(a.checkpoint)
    if a.quick: ck = ck.with_name(ck.stem + '_quick' + ck.suffix)
    if a.fresh:
        with checkpoint_lock(ck):                 # refuses if another search is using this checkpoint
            if ck.exists(): ck.unlink()

    t0 = time.perf_counter()
    df = threshold_likes(synthetic_likes(seed=a.seed), 5, 5, verbose=False)
    likes = likes_matrix(df)
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
    t_data = time.perf_counter() - t0
    n_cfg = 1
    for v in grid.values(): n_cfg *= len(v)
    print(f'data: {likes.shape[0]:,} users x {likes.shape[1]:,} items, {likes.nnz:,} likes '
          f'(synthetic_likes(seed={a.seed}), 5/5 core); {len(users):,} test users x 5 likes; {t_data:.1f} s')
    print(f'grid: {n_cfg} configurations x {len(epochs)} epochs; {n_jobs} worker(s) x {threads} numba thread(s) '
          f'on {cores} core(s); checkpoint {ck}')

    base = ALS(random_state=0, num_threads=threads if n_jobs == 1 else 0)
    if n_jobs == 1: numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t0 = time.perf_counter()
    curves = grid_search_learning_curve(base, train, test, grid, users, patk=5, epochs=epochs, n_jobs=n_jobs,
                                        checkpoint=ck, verbose=a.verbose)
    seconds = time.perf_counter() - t0
    print(f'\ntotal: {seconds:.1f} s ({seconds / 60:.1f} min) for {len(curves)} configurations '
          '(configurations found in the checkpoint cost nothing; use --fresh to time everything)')

    best = sorted(curves, key=lambda c: max(c['patk']['test']), reverse=True)[0]
    bp = best_params(curves)
    print(f"best: {best['params']}  peak test p@5 {max(best['patk']['test']):.5f} at epoch {bp['iterations']}")
    print_log(['epochs', 'p@k train', 'p@k test', 'mse train', 'mse test'], header=True)
    for row in zip(best['epochs'], best['patk']['train'], best['patk']['test'], best['mse']['train'], best['mse']['test']):
        print_log(list(row))

    if not a.no_save:
        meta = {'data': f'{likes.shape[0]} users x {likes.shape[1]} items, {likes.nnz} likes '
                        f'(synthetic_likes(seed={a.seed}), 5/5 core)',
                'split': 'train_test_split(likes, 5, fraction=0.2, seed=0)', 'test_users': len(users),
                'base_model': 'ALS(random_state=0) (cg solver, 3 CG steps, float32)',
                'param_grid': grid, 'epochs': list(epochs), 'patk': 5, 'seconds': round(seconds, 1),
                'n_jobs': n_jobs, 'threads_per_worker': threads, 'cores': cores,
                'machine': f'{platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}',
                'best_params': bp}
        save_curves(curves, a.out, meta)
        print(f'saved {a.out} ({Path(a.out).stat().st_size / 1024:.0f} kB)')


if __name__ == '__main__':
    main()
