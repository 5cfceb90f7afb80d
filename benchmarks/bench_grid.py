"""The post's whole grid search on the default Sketchfab-shaped data, timed, checkpointed and saved; and successive
halving over the same grid, compared with it.

num_factors 10, 20, 40, 80, 120 x regularization 0, 1e-5, 1e-3, 0.1, 10, 100 x alpha 1, 10, 50, 100, 500, 1000
(180 configurations), evaluated at epochs 2, 4, ..., 38 with p@5 and MSE on the post's split (20% of the users,
5 held-out likes each). Results go to wrmf_nb/data/grid_sketchfab_synthetic.json and (halving)
wrmf_nb/data/halving_sketchfab_synthetic.json (package data), which chapters 05 and 06 read.

    .venv/bin/python benchmarks/bench_grid.py --both --fresh        # both searches and their table (the chapter's)
    .venv/bin/python benchmarks/bench_grid.py                       # the full grid, all cores
    .venv/bin/python benchmarks/bench_grid.py --halving             # halving only, compared with the saved grid
    .venv/bin/python benchmarks/bench_grid.py --simulate            # halving read off the saved grid, no training
    .venv/bin/python benchmarks/bench_grid.py --quick --both --no-save   # 8 configurations, a smoke test
    .venv/bin/python benchmarks/bench_grid.py --n-jobs 1 --threads 2

The checkpoints (default wrmf-nb-out/grid_sketchfab_synthetic.jsonl and wrmf-nb-out/halving_sketchfab_synthetic.jsonl)
make an interrupted run resumable: run the same command again. Delete them (or pass --fresh) to time a run from scratch.
"""
import argparse
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import numba

from wrmf_nb.als import ALS
from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
from wrmf_nb.metrics import calculate_mses, precisions_at_k
from wrmf_nb.search import (POST_GRID, available_cores, best_params, checkpoint_lock, grid_search_learning_curve,
                            halving_from_curves, halving_rungs, halving_search, load_curves, print_log, save_curves,
                            search_table, threads_per_worker)
from wrmf_nb.split import train_test_split

ROOT = Path(__file__).resolve().parents[1]
QUICK_GRID = {'num_factors': [10, 40], 'regularization': [0.1, 10.0], 'alpha': [10, 50]}


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n-jobs', type=int, default=0, help='worker processes (0: one per core)')
    ap.add_argument('--threads', type=int, default=0, help='numba threads per worker (0: cores // n_jobs)')
    ap.add_argument('--checkpoint', default=str(ROOT / 'wrmf-nb-out' / 'grid_sketchfab_synthetic.jsonl'))
    ap.add_argument('--halving-checkpoint', default=str(ROOT / 'wrmf-nb-out' / 'halving_sketchfab_synthetic.jsonl'))
    ap.add_argument('--fresh', action='store_true', help='delete the checkpoints first (time a run from scratch)')
    ap.add_argument('--out', default=str(ROOT / 'wrmf_nb' / 'data' / 'grid_sketchfab_synthetic.json'))
    ap.add_argument('--halving-out', default=str(ROOT / 'wrmf_nb' / 'data' / 'halving_sketchfab_synthetic.json'))
    ap.add_argument('--no-save', action='store_true', help='do not write the results files')
    ap.add_argument('--quick', action='store_true', help=f'a small grid instead of the post\'s: {QUICK_GRID}')
    ap.add_argument('--epochs', type=int, nargs=3, default=[2, 40, 2], metavar=('START', 'STOP', 'STEP'))
    what = ap.add_mutually_exclusive_group()
    what.add_argument('--halving', action='store_true', help='successive halving only (compared with the saved grid)')
    what.add_argument('--both', action='store_true', help='the grid, then successive halving, and their table')
    what.add_argument('--simulate', action='store_true',
                      help='no training: halving schedules read off the saved grid, with estimated costs')
    ap.add_argument('--eta', type=int, default=3, help='successive halving keeps the best 1/eta at each rung')
    ap.add_argument('--first', type=int, default=None, help='the first rung (default: the first epoch)')
    ap.add_argument('--verbose', action='store_true', help="print every configuration's table")
    ap.add_argument('--seed', type=int, default=42, help='synthetic_likes seed')
    return ap.parse_args(argv)


def _data(seed):
    t0 = time.perf_counter()
    likes = likes_matrix(threshold_likes(synthetic_likes(seed=seed), 5, 5, verbose=False))
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
    about = (f'{likes.shape[0]} users x {likes.shape[1]} items, {likes.nnz} likes '
             f'(synthetic_likes(seed={seed}), 5/5 core)')
    print(f'data: {about}; {len(users):,} test users x 5 likes; {time.perf_counter() - t0:.1f} s')
    return train, test, users, about


def _fresh(ck: Path):
    with checkpoint_lock(ck):                 # refuses if another search is using this checkpoint
        if ck.exists(): ck.unlink()
        shutil.rmtree(ck.with_name(ck.name + '.states'), ignore_errors=True)


def _print_best(curves, what):
    best = sorted(curves, key=lambda c: max(c['patk']['test']), reverse=True)[0]
    bp = best_params(curves)
    print(f"{what} best: {best['params']}  peak test p@5 {max(best['patk']['test']):.5f} at epoch {bp['iterations']}")
    print_log(['epochs', 'p@k train', 'p@k test', 'mse train', 'mse test'], header=True)
    for row in zip(best['epochs'], best['patk']['train'], best['patk']['test'], best['mse']['train'], best['mse']['test']):
        print_log(list(row))


# per-sweep and per-evaluation milliseconds by num_factors (1 thread, default data), for --simulate's cost estimate;
# measured on the spot by _unit_costs
def _unit_costs(train, test, users, factors):
    numba.set_num_threads(1)
    cost = {}
    for f in [factors[0], *factors]:          # the first one twice: compile before timing
        m = ALS(num_factors=f, iterations=1, random_state=0, num_threads=1).fit(train)
        t0 = time.perf_counter(); m.iterations = 2; m.fit_partial(train); sweep = (time.perf_counter() - t0) / 2
        t0 = time.perf_counter()
        precisions_at_k(m, [train, test], 5, users); calculate_mses(m, [train, test], users)
        cost[f] = (sweep, time.perf_counter() - t0)
    return cost


def _cost(curves, cost):
    "Estimated seconds of 1 thread: sweeps x sweep cost + evaluations x evaluation cost, by factor count."
    return sum(c['epochs'][-1] * cost[c['params']['num_factors']][0]
               + len(c['epochs']) * cost[c['params']['num_factors']][1] for c in curves)


def simulate(a):
    grid, meta = load_curves(a.out)
    train, test, users, _ = _data(a.seed)
    cost = _unit_costs(train, test, users, sorted({c['params']['num_factors'] for c in grid}))
    print('ms per sweep / per evaluation (1 thread): '
          + ', '.join(f'f={f}: {s * 1e3:.0f} / {e * 1e3:.0f}' for f, (s, e) in cost.items()))
    full, ep = _cost(grid, cost), meta['epochs']
    best = max(max(c['patk']['test']) for c in grid)
    print(f"{'eta':>3} {'rungs':24} {'best configuration':72} {'peak p@5':>8} {'gap %':>6} {'evals':>6} {'cost':>6}")
    for eta in (2, 3, 4):
        for first in ep[:3]:
            rungs = halving_rungs(ep, eta, first)
            h = halving_from_curves(grid, eta, rungs)
            peak = max(max(c['patk']['test']) for c in h)
            print(f"{eta:>3} {str(rungs):24} {str(best_params(h)):72} {peak:8.5f} {100 * (best - peak) / best:6.2f} "
                  f"{sum(len(c['epochs']) for c in h):6d} {_cost(h, cost) / full:6.3f}")
    print(f'(the grid: {sum(len(c["epochs"]) for c in grid)} evaluations; cost = estimated fraction of its time)')


def main(argv=None):
    a = _args(argv)
    if a.simulate: return simulate(a)
    cores = available_cores()
    n_jobs = a.n_jobs or cores
    threads = a.threads or threads_per_worker(n_jobs, cores)
    grid = QUICK_GRID if a.quick else POST_GRID
    epochs = range(*a.epochs)
    rungs = halving_rungs(epochs, a.eta, a.first)
    ck, hck = Path(a.checkpoint), Path(a.halving_checkpoint)
    if a.quick: ck, hck = (p.with_name(p.stem + '_quick' + p.suffix) for p in (ck, hck))
    if a.fresh:                               # only the checkpoints of the searches that run
        for p in [ck] * (not a.halving) + [hck] * (a.halving or a.both): _fresh(p)
    train, test, users, about = _data(a.seed)
    n_cfg = 1
    for v in grid.values(): n_cfg *= len(v)
    print(f'grid: {n_cfg} configurations x {len(epochs)} epochs; {n_jobs} worker(s) x {threads} numba thread(s) '
          f'on {cores} core(s); checkpoints {ck}, {hck}')

    base = ALS(random_state=0, num_threads=threads if n_jobs == 1 else 0)
    if n_jobs == 1: numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    search = dict(patk=5, epochs=epochs, n_jobs=n_jobs, verbose=a.verbose)
    meta = {'data': about, 'split': 'train_test_split(likes, 5, fraction=0.2, seed=0)', 'test_users': len(users),
            'base_model': 'ALS(random_state=0) (cg solver, 3 CG steps, float32)',
            'param_grid': grid, 'epochs': list(epochs), 'patk': 5, 'n_jobs': n_jobs, 'threads_per_worker': threads,
            'cores': cores, 'command': shlex.join(['python', 'benchmarks/bench_grid.py', *(argv or sys.argv[1:])]),
            'machine': f'{platform.processor() or platform.machine()}, {platform.system()}, '
                       f'Python {platform.python_version()}'}
    runs = {}
    if not a.halving:
        t0 = time.perf_counter()
        curves = grid_search_learning_curve(base, train, test, grid, users, checkpoint=ck, **search)
        seconds = time.perf_counter() - t0
        print(f'\ngrid: {seconds:.1f} s ({seconds / 60:.1f} min) for {len(curves)} configurations '
              '(configurations found in the checkpoint cost nothing; use --fresh to time everything)')
        _print_best(curves, 'grid')
        if not a.no_save:
            save_curves(curves, a.out, {**meta, 'seconds': round(seconds, 1), 'best_params': best_params(curves)})
            print(f'saved {a.out} ({Path(a.out).stat().st_size / 1024:.0f} kB)')
        runs['exhaustive grid'] = (curves, seconds)
    if a.halving or a.both:
        if not runs:
            curves, gmeta = load_curves(a.out)
            if gmeta.get('param_grid') != grid or gmeta.get('epochs') != list(epochs):
                sys.exit(f'{a.out} is not this grid: run with --both')
            runs[f'exhaustive grid (saved, {a.out})'] = (curves, gmeta['seconds'])
        t0 = time.perf_counter()
        halved = halving_search(base, train, test, grid, users, eta=a.eta, rungs=rungs, checkpoint=hck, **search)
        seconds = time.perf_counter() - t0
        print(f'\nhalving: {seconds:.1f} s, eta={a.eta}, rungs {rungs} '
              '(work found in the checkpoint costs nothing; use --fresh to time everything)')
        _print_best(halved, 'halving')
        sim = halving_from_curves(curves, a.eta, rungs)   # training is deterministic: the same, unless the grid
        r7 = lambda cs: [{m: {s: [float(f'{x:.7g}') for x in c[m][s]] for s in ('train', 'test')}
                          for m in ('patk', 'mse')} for c in cs]   # is a saved file made by other code (7 digits)
        print(f"halving read off the grid's curves: the same survivors "
              f"{[c['epochs'] for c in halved] == [c['epochs'] for c in sim]}, the same numbers {r7(halved) == r7(sim)}")
        if not a.no_save:
            save_curves(halved, a.halving_out, {**meta, 'method': 'successive halving', 'eta': a.eta, 'rungs': rungs,
                                                'seconds': round(seconds, 1), 'best_params': best_params(halved)})
            print(f'saved {a.halving_out} ({Path(a.halving_out).stat().st_size / 1024:.0f} kB)')
        runs['successive halving'] = (halved, seconds)
        print()
        print(search_table(runs).to_string(float_format=lambda v: f'{v:.5g}'))


if __name__ == '__main__':
    main()
