#!/usr/bin/env python
"""Benchmark wrmf_nb's ALS against implicit 0.7.3's CPU ALS on Sketchfab-shaped data.

Both libraries train on the same matrix, with the same number of threads, the same initial vectors
and the same loss: implicit uses the stored values r as confidences alpha*r, so it gets
r = 1 + alpha*d on the liked cells (with its own alpha = 1), which is exactly wrmf_nb's c = 1 + alpha*d.

Reports, as markdown:
  * milliseconds per sweep (users + items) at each --factors, for both solvers of both libraries, measured in
    --rounds interleaved rounds (wrmf_nb CG, implicit CG, wrmf_nb Cholesky, implicit Cholesky, then again), so that
    both libraries see the same state of the machine; each entry is the median over rounds of a fit's median
    sweep (after one untimed warm-up fit that also compiles the numba kernels), each speed-up the median over
    rounds of the two libraries' ratio in that round;
  * the arithmetic the model needs per sweep (GFLOP, counted below) over that time: achieved GFLOP/s, next to the
    machine's single-precision matrix-product rate (numpy's BLAS sgemm, 2048 x 2048, on the same threads);
  * precision@5 on a held-out split (5 likes of 20% of the users; training likes excluded from the
    ranking) for the models of both libraries trained with the same hyper-parameters;
  * the peak resident memory of a separate process that loads the matrix and trains one model.

Usage:  python benchmarks/bench_als.py [--factors 40 64 128] [--iterations 5] [--rounds 3] [--threads 0] [--quick]
                                       [--json benchmarks/results/als.json]
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

import numpy as np
import scipy.sparse as sp


def sketchfab_like(seed=42, quick=False):
    "The post's likes after 5/5 thresholding, synthetic: about 15K users x 26K models, 540K likes."
    from wrmf_nb.data import synthetic_likes, threshold_likes, likes_matrix
    kw = dict(n_users=20000, n_items=9000, n_likes=200000) if quick else {}
    df = threshold_likes(synthetic_likes(seed=seed, **kw), 5, 5, verbose=False)
    return likes_matrix(df)


def split(likes, seed=0, per_user=5, fraction=0.2):
    "Move `per_user` likes of a random `fraction` of the users with >= 2*per_user likes to a test matrix."
    from wrmf_nb.split import train_test_split
    return train_test_split(likes, per_user, fraction=fraction, seed=seed)


def precision_at_k(X, Y, train, test, users, k=5, chunk=512):
    "Mean over `users` of |top-k (excluding training likes) & test likes| / k, exactly, in chunks of users."
    hits = 0
    users = np.asarray(users)
    for s in range(0, len(users), chunk):
        u = users[s:s + chunk]
        scores = X[u] @ Y.T
        tr = train[u].tocoo()
        scores[tr.row, tr.col] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        te = test[u]
        for r in range(len(u)):
            hits += np.isin(top[r], te.indices[te.indptr[r]:te.indptr[r + 1]]).sum()
    return hits / (k * len(users))


def flops_per_sweep(likes, f, solver, cg_steps=3):
    """Floating-point operations one sweep (users + items) needs, counting a multiply-add as 2.
    Both Gramians (Y^T Y, X^T X): (users + items) f^2. CG, (cg_steps + 1) products A p per row: 2 f^2 for G p and
    4 f per like (a dot product and an axpy), on both sides. Cholesky, per row: f^3/3 to factor and 2 f^2 to solve;
    per like: f (f + 1) for its rank-one update of the lower triangle and 2 f for the right-hand side."""
    rows, nnz2 = likes.shape[0] + likes.shape[1], 2 * likes.nnz
    gram = rows * f * f
    if solver == 'cg':
        return gram + (cg_steps + 1) * (rows * 2 * f * f + nnz2 * 4 * f)
    return gram + rows * (f ** 3 / 3 + 2 * f * f) + nnz2 * (f * (f + 1) + 2 * f)


def sgemm_gflops(threads, n=2048, reps=5):
    "numpy's BLAS single-precision matrix product on `threads` threads: the machine's practical float32 rate."
    import scipy.linalg.cython_blas  # noqa: F401  (load every BLAS, so that the limit covers them all)
    from threadpoolctl import threadpool_limits
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    with threadpool_limits(threads, 'blas'):
        a @ a
        best = np.inf
        for _ in range(reps):
            t = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def implicit_model(factors, use_cg, iterations, threads, seed, reg):
    from implicit.cpu.als import AlternatingLeastSquares
    return AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, use_cg=use_cg, use_native=True,
                                   iterations=iterations, calculate_training_loss=False, num_threads=threads,
                                   random_state=seed)


def implicit_input(likes, alpha):
    "implicit's confidence is the stored value: give it 1 + alpha*d on the liked cells."
    C = sp.csr_matrix(likes, dtype=np.float32, copy=True)
    C.data = 1 + alpha * C.data
    return C


def time_wrmf(likes, f, solver, sweeps, threads, alpha, reg, seed):
    from wrmf_nb.als import ALS
    stamps = []
    cb = lambda sweep, model: stamps.append(time.perf_counter())
    ALS(num_factors=f, iterations=1, solver=solver, num_threads=threads, random_state=seed).fit(likes)  # warm-up
    m = ALS(num_factors=f, regularization=reg, alpha=alpha, iterations=sweeps, solver=solver, num_threads=threads,
            random_state=seed, callback=cb)
    t0 = time.perf_counter()
    m.fit(likes)
    stamps = [t0] + stamps
    return 1000 * float(np.median(np.diff(stamps)))


def time_implicit(C, f, use_cg, sweeps, threads, reg, seed):
    from threadpoolctl import threadpool_limits
    times = []
    with threadpool_limits(1, 'blas'):     # as implicit itself recommends
        implicit_model(f, use_cg, 1, threads, seed, reg).fit(C, show_progress=False)  # warm-up
        m = implicit_model(f, use_cg, sweeps, threads, seed, reg)
        m.fit(C, show_progress=False, callback=lambda it, elapsed, loss: times.append(elapsed))
    return 1000 * float(np.median(times))


def quality(train, test, users, f, iterations, threads, alpha, reg, seed):
    "precision@5 of both solvers of both libraries, trained with the same hyper-parameters and initial vectors."
    from threadpoolctl import threadpool_limits
    from wrmf_nb.als import ALS
    out = {}
    for solver in ('cg', 'cholesky'):
        m = ALS(num_factors=f, regularization=reg, alpha=alpha, iterations=iterations, solver=solver,
                num_threads=threads, random_state=seed).fit(train)
        out['wrmf_nb', solver] = precision_at_k(m.user_vectors, m.item_vectors, train, test, users)
    C = implicit_input(train, alpha)
    for solver in ('cg', 'cholesky'):
        with threadpool_limits(1, 'blas'):
            m = implicit_model(f, solver == 'cg', iterations, threads, seed, reg)
            m.fit(C, show_progress=False)
        out['implicit', solver] = precision_at_k(m.user_factors, m.item_factors, train, test, users)
    return out


def _status_mb(field):
    "VmRSS / VmHWM of this process in MB (Linux), else ru_maxrss (which on Linux survives fork + exec, hence the preference)."
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(field + ':'): return int(line.split()[1]) / 1024
    except OSError: pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(path, library, f, iterations, threads, alpha, reg, seed):
    "Runs in a fresh process: load the matrix, train, print the resident memory before training and its peak."
    likes = sp.load_npz(path).tocsr()
    if library == 'wrmf_nb':
        from wrmf_nb.als import ALS
        m = ALS(num_factors=f, regularization=reg, alpha=alpha, iterations=iterations, num_threads=threads,
                random_state=seed)
        before = _status_mb('VmRSS')
        m.fit(likes)
    else:
        from threadpoolctl import threadpool_limits
        C = implicit_input(likes, alpha)
        before = _status_mb('VmRSS')
        with threadpool_limits(1, 'blas'):
            implicit_model(f, True, iterations, threads, seed, reg).fit(C, show_progress=False)
    print(json.dumps({'before_fit_mb': before, 'peak_mb': _status_mb('VmHWM')}))


def peak_memory(likes, library, f, iterations, threads, alpha, reg, seed):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'likes.npz'
        sp.save_npz(p, sp.csr_matrix(likes))
        cmd = [sys.executable, __file__, '--memory-child', str(p), library, str(f), str(iterations), str(threads),
               str(alpha), str(reg), str(seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine():
    import numba, implicit
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    return (f"{cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}, implicit {implicit.__version__}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--factors', type=int, nargs='+', default=[40, 64, 128], help='factor sizes to time (default: 40 64 128)')
    p.add_argument('--iterations', type=int, default=5, help='timed sweeps per fit (default: 5)')
    p.add_argument('--rounds', type=int, default=3, help='interleaved rounds per factor size (default: 3)')
    p.add_argument('--json', help='also write the numbers to this file (e.g. benchmarks/results/als.json)')
    p.add_argument('--threads', type=int, default=0, help='threads for both libraries; 0 = all cores (default)')
    p.add_argument('--alpha', type=float, default=40.0, help='confidence scale (default: 40)')
    p.add_argument('--regularization', type=float, default=0.1, help='lambda (default: 0.1)')
    p.add_argument('--quality-factors', type=int, default=40, help='factors of the precision@5 models (default: 40)')
    p.add_argument('--quality-iterations', type=int, default=15, help='sweeps of the precision@5 models (default: 15)')
    p.add_argument('--seed', type=int, default=42, help='seed of the data, the split and the initial vectors')
    p.add_argument('--quick', action='store_true', help='smaller data, 2 timed sweeps, 5 quality sweeps: a smoke test')
    p.add_argument('--skip', nargs='*', default=[], choices=['implicit-cholesky', 'quality', 'memory'],
                   help='parts to leave out')
    p.add_argument('--memory-child', nargs=8, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.memory_child:
        path, lib, f, it, th, alpha, reg, seed = a.memory_child
        return memory_child(path, lib, int(f), int(it), int(th), float(alpha), float(reg), int(seed))
    if a.quick: a.iterations, a.quality_iterations, a.rounds = 2, 5, 1
    threads = a.threads or os.cpu_count()

    t = time.perf_counter()
    likes = sketchfab_like(a.seed, a.quick)
    print(f"data: {likes.shape[0]:,} users x {likes.shape[1]:,} models, {likes.nnz:,} likes "
          f"(synthetic, Sketchfab-shaped; {time.perf_counter() - t:.1f}s)", file=sys.stderr)
    C = implicit_input(likes, a.alpha)

    peak1, peak = sgemm_gflops(1), sgemm_gflops(threads)
    print(f"sgemm: {peak1:.0f} GFLOP/s on 1 thread, {peak:.0f} on {threads}", file=sys.stderr)
    rows = []
    for f in a.factors:
        runs = {k: [] for k in ('w_cg', 'i_cg', 'w_ch', 'i_ch')}
        for rnd in range(a.rounds):                      # interleaved: both libraries see the same machine
            runs['w_cg'].append(time_wrmf(likes, f, 'cg', a.iterations, threads, a.alpha, a.regularization, a.seed))
            runs['i_cg'].append(time_implicit(C, f, True, a.iterations, threads, a.regularization, a.seed))
            runs['w_ch'].append(time_wrmf(likes, f, 'cholesky', a.iterations, threads, a.alpha, a.regularization, a.seed))
            runs['i_ch'].append(np.nan if 'implicit-cholesky' in a.skip else
                                time_implicit(C, f, False, a.iterations, threads, a.regularization, a.seed))
        r = {'f': f, **{k: float(np.median(v)) for k, v in runs.items()}, 'runs': runs,
             'up_cg': float(np.median(np.array(runs['i_cg']) / runs['w_cg'])),
             'up_ch': float(np.median(np.array(runs['i_ch']) / runs['w_ch'])),
             'gflop_cg': flops_per_sweep(likes, f, 'cg') / 1e9, 'gflop_ch': flops_per_sweep(likes, f, 'cholesky') / 1e9}
        print(f"f={f}: {runs}", file=sys.stderr)
        rows.append(r)

    print(f"\nALS on {likes.shape[0]:,} users x {likes.shape[1]:,} models ({likes.nnz:,} likes), {threads} threads, "
          f"alpha={a.alpha:g}, lambda={a.regularization:g}; ms per sweep (users + items): median over {a.rounds} "
          f"interleaved rounds of the median of {a.iterations} sweeps; speed-up: median of the rounds' ratios; "
          f"GFLOP/s: the model's arithmetic per sweep over wrmf_nb's time, and in brackets its share of the "
          f"machine's sgemm rate on {threads} threads ({peak:.0f} GFLOP/s).\n")
    print("| factors | wrmf_nb CG | implicit CG | CG speed-up | CG GFLOP/s | wrmf_nb Cholesky | implicit Cholesky "
          "| Cholesky speed-up | Cholesky GFLOP/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        i_ch = '-' if np.isnan(r['i_ch']) else f"{r['i_ch']:.0f}"
        up_ch = '-' if np.isnan(r['i_ch']) else f"{r['up_ch']:.2f}x"
        g_cg, g_ch = 1e3 * r['gflop_cg'] / r['w_cg'], 1e3 * r['gflop_ch'] / r['w_ch']
        print(f"| {r['f']} | {r['w_cg']:.0f} | {r['i_cg']:.0f} | {r['up_cg']:.2f}x | {g_cg:.0f} ({g_cg / peak:.0%}) "
              f"| {r['w_ch']:.0f} | {i_ch} | {up_ch} | {g_ch:.0f} ({g_ch / peak:.0%}) |")
    report = {'machine': machine(), 'threads': threads, 'sgemm_gflops': {'1': peak1, str(threads): peak},
              'alpha': a.alpha, 'regularization': a.regularization, 'iterations': a.iterations, 'rounds': a.rounds,
              'rows': rows}

    if 'quality' not in a.skip:
        train, test, users = split(likes, seed=a.seed)
        q = quality(train, test, users, a.quality_factors, a.quality_iterations, threads, a.alpha, a.regularization, a.seed)
        print(f"\nprecision@5 on {len(users):,} test users (5 held-out likes each, training likes excluded), "
              f"{a.quality_factors} factors, {a.quality_iterations} sweeps, same initial vectors:\n")
        print("| solver | wrmf_nb | implicit | relative difference |")
        print("|---|---:|---:|---:|")
        for s in ('cg', 'cholesky'):
            w, i = q['wrmf_nb', s], q['implicit', s]
            print(f"| {s} | {w:.4f} | {i:.4f} | {(w - i) / i:+.1%} |")
        report['precision_at_5'] = {f'{lib}/{s}': v for (lib, s), v in q.items()}

    if 'memory' not in a.skip:
        f = a.quality_factors
        print(f"\nresident memory of a fresh process that loads the matrix and trains {a.quality_iterations} CG sweeps "
              f"at {f} factors (before the fit: interpreter, libraries and the matrix):\n")
        print("| library | before fit | peak |")
        print("|---|---:|---:|")
        for lib in ('wrmf_nb', 'implicit'):
            m = peak_memory(likes, lib, f, a.quality_iterations, threads, a.alpha, a.regularization, a.seed)
            print(f"| {lib} | {m['before_fit_mb']:.0f} MB | {m['peak_mb']:.0f} MB |")
            report.setdefault('memory_mb', {})[lib] = m
    print(f"\nmachine: {machine()}")
    if a.json:
        from wrmf_nb._files import atomic_write
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(a.json, 'w', encoding='utf-8') as fh: json.dump(report, fh, indent=1)
        print(f"numbers written to {a.json}", file=sys.stderr)


if __name__ == '__main__':
    main()
