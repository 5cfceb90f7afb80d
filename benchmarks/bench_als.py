#!/usr/bin/env python
"""Benchmark wrmf_nb's ALS against implicit 0.7.3's CPU ALS on Sketchfab-shaped data.

Both libraries train on the same matrix, with the same number of threads, the same initial vectors
and the same loss: implicit uses the stored values r as confidences alpha*r, so it gets
r = 1 + alpha*d on the liked cells (with its own alpha = 1), which is exactly wrmf_nb's c = 1 + alpha*d.

Reports, as markdown:
  * milliseconds per sweep (users + items) at each --factors, for both solvers of both libraries
    (median over the timed sweeps, after one untimed warm-up fit that also compiles the numba kernels);
  * precision@5 on a held-out split (5 likes of 20% of the users; training likes excluded from the
    ranking) for the models of both libraries trained with the same hyper-parameters;
  * the peak resident memory of a separate process that loads the matrix and trains one model.

Usage:  python benchmarks/bench_als.py [--factors 40 64 128] [--iterations 5] [--threads 0] [--quick]
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
    p.add_argument('--iterations', type=int, default=5, help='timed sweeps per configuration (default: 5)')
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
    if a.quick: a.iterations, a.quality_iterations = 2, 5
    threads = a.threads or os.cpu_count()

    t = time.perf_counter()
    likes = sketchfab_like(a.seed, a.quick)
    print(f"data: {likes.shape[0]:,} users x {likes.shape[1]:,} models, {likes.nnz:,} likes "
          f"(synthetic, Sketchfab-shaped; {time.perf_counter() - t:.1f}s)", file=sys.stderr)
    C = implicit_input(likes, a.alpha)

    rows = []
    for f in a.factors:
        r = {'f': f}
        r['w_cg'] = time_wrmf(likes, f, 'cg', a.iterations, threads, a.alpha, a.regularization, a.seed)
        r['i_cg'] = time_implicit(C, f, True, a.iterations, threads, a.regularization, a.seed)
        r['w_ch'] = time_wrmf(likes, f, 'cholesky', a.iterations, threads, a.alpha, a.regularization, a.seed)
        r['i_ch'] = (np.nan if 'implicit-cholesky' in a.skip else
                     time_implicit(C, f, False, a.iterations, threads, a.regularization, a.seed))
        print(f"f={f}: {r}", file=sys.stderr)
        rows.append(r)

    print(f"\nALS on {likes.shape[0]:,} users x {likes.shape[1]:,} models ({likes.nnz:,} likes), {threads} threads, "
          f"alpha={a.alpha:g}, lambda={a.regularization:g}; ms per sweep (users + items), median of {a.iterations}.\n")
    print("| factors | wrmf_nb CG | implicit CG | CG speed-up | wrmf_nb Cholesky | implicit Cholesky | Cholesky speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        i_ch = '-' if np.isnan(r['i_ch']) else f"{r['i_ch']:.0f}"
        up_ch = '-' if np.isnan(r['i_ch']) else f"{r['i_ch'] / r['w_ch']:.2f}x"
        print(f"| {r['f']} | {r['w_cg']:.0f} | {r['i_cg']:.0f} | {r['i_cg'] / r['w_cg']:.2f}x | {r['w_ch']:.0f} | "
              f"{i_ch} | {up_ch} |")

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

    if 'memory' not in a.skip:
        f = a.quality_factors
        print(f"\nresident memory of a fresh process that loads the matrix and trains {a.quality_iterations} CG sweeps "
              f"at {f} factors (before the fit: interpreter, libraries and the matrix):\n")
        print("| library | before fit | peak |")
        print("|---|---:|---:|")
        for lib in ('wrmf_nb', 'implicit'):
            m = peak_memory(likes, lib, f, a.quality_iterations, threads, a.alpha, a.regularization, a.seed)
            print(f"| {lib} | {m['before_fit_mb']:.0f} MB | {m['peak_mb']:.0f} MB |")
    print(f"\nmachine: {machine()}")


if __name__ == '__main__':
    main()
