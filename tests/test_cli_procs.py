"""`wrmf-nb` with real processes: a model folder killed mid-save stays loadable and consistent; SIGTERM ends a
run like Ctrl-C (exit code 143); `grid --jobs 2` killed with SIGTERM or SIGKILL leaves no process behind."""
import json, os, signal, subprocess, sys, threading, time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
CLI = [sys.executable, '-m', 'wrmf_nb.cli']

# Saves two different runs over one folder in a loop (in a forked child), kills the child at random moments and
# checks after each kill that the folder loads and that model, likes and ids come from the same run.
KILL_DRIVER = r'''
import json, os, signal, sys, time
import numpy as np, scipy.sparse as sp
from wrmf_nb.als import ALS
from wrmf_nb.cli import save_fitted, load_fitted
out, kills = sys.argv[1], int(sys.argv[2])
SHAPES = {'a': (12000, 2000, 200), 'b': (9000, 3000, 120)}
def run(tag):
    n_users, n_items, f = SHAPES[tag]
    rng = np.random.default_rng(f)
    m = ALS(num_factors=f)
    m.user_vectors = rng.standard_normal((n_users, f), dtype=np.float32)
    m.item_vectors = rng.standard_normal((n_items, f), dtype=np.float32)
    m.sweeps_done = 1
    likes = sp.random(n_users, n_items, density=0.005, format='csr', random_state=f)
    maps = (None, [f'{tag}-m{i}' for i in range(n_items)], None, [f'{tag}-u{i}' for i in range(n_users)])
    return m, maps, likes
runs = {t: run(t) for t in SHAPES}
save_fitted(out, *runs['a'], source='a')
rng = np.random.default_rng(0)
for k in range(kills):
    pid = os.fork()
    if pid == 0:
        i = k
        while True:
            tag = 'ab'[i % 2]; save_fitted(out, *runs[tag], source=tag); i += 1
    time.sleep(0.05 + 0.35 * rng.random())
    os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
    try:
        model, meta, likes = load_fitted(out)
        tag = meta['source']; n_users, n_items, f = SHAPES[tag]
        ok = (model.user_vectors.shape == (n_users, f) and model.item_vectors.shape == (n_items, f)
              and likes.shape == (n_users, n_items) and likes.nnz == runs[tag][2].nnz
              and len(meta['idx_to_uid']) == n_users and meta['idx_to_mid'][-1] == f'{tag}-m{n_items - 1}'
              and meta['params']['num_factors'] == f)
        print(json.dumps({'kill': k, 'ok': bool(ok), 'run': tag}), flush=True)
    except Exception as e:
        print(json.dumps({'kill': k, 'ok': False, 'error': f'{type(e).__name__}: {e}'[:300]}), flush=True)
'''


def test_model_folder_survives_kills(tmp_path):
    r = subprocess.run([sys.executable, '-c', KILL_DRIVER, str(tmp_path / 'M'), '8'], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{')]
    assert len(results) == 8, r.stdout
    bad = [x for x in results if not x['ok']]
    assert not bad, bad
    assert {x['run'] for x in results} <= {'a', 'b'}


def _descendants(pid, wait_for=1, timeout=60):
    "The processes below `pid` once there are at least `wait_for` of them."
    t0 = time.time()
    while time.time() - t0 < timeout:
        kids = psutil.Process(pid).children(recursive=True)
        if len(kids) >= wait_for: return kids
        time.sleep(0.2)
    raise AssertionError(f'only {len(kids)} child processes after {timeout}s')


def _alive(procs):
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE: out.append(p)
        except psutil.NoSuchProcess: pass
    return out


def _gone_within(procs, seconds):
    t0 = time.time()
    while _alive(procs) and time.time() - t0 < seconds: time.sleep(0.1)
    return _alive(procs)


def _cleanup(proc, procs):
    "Kill what this test started and left behind (by pid), so that a failure does not leak processes."
    for p in _alive(procs) + _alive([psutil.Process(proc.pid)] if psutil.pid_exists(proc.pid) else []):
        try: p.kill()
        except psutil.NoSuchProcess: pass
    try: proc.wait(timeout=10)
    except subprocess.TimeoutExpired: pass


# post-size synthetic data, 4 configurations, ~20 s in all on 2 workers: long enough to kill it mid-search
GRID = CLI + ['grid', '--factors', '64', '128', '--alpha', '10', '--regularization', '0.1', '1', '--epochs', '1', '60', '1',
              '--jobs', '2', '-q']


def _start_grid(tmp_path):
    ck = tmp_path / 'grid.ckpt'
    proc = subprocess.Popen(GRID + ['--checkpoint', str(ck)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    kids = _descendants(proc.pid, wait_for=2)             # the two workers (and multiprocessing's helper)
    time.sleep(3)                                          # the workers are training now
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    return proc, kids, ck


def _checkpoint_loads(ck):
    lines = ck.read_text().splitlines()
    assert json.loads(lines[0])['format'].startswith('wrmf_nb.grid-checkpoint')
    for line in lines[1:]: assert set(json.loads(line)) >= {'key', 'curve'}
    return len(lines) - 1


def test_grid_sigterm_ends_cleanly(tmp_path):
    proc, kids, ck = _start_grid(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        try: out, err = proc.communicate(timeout=10)          # needs h-search: workers terminated on KeyboardInterrupt
        except subprocess.TimeoutExpired: pytest.fail('wrmf-nb grid did not end within 10 s of SIGTERM')
        assert proc.returncode == 143, err.decode()[-2000:]
        assert 'wrmf-nb: terminated' in err.decode().splitlines() and 'Traceback' not in err.decode()
        _checkpoint_loads(ck)
        assert not _gone_within(kids, 5), 'worker processes left behind after SIGTERM'   # needs h-search
    finally: _cleanup(proc, kids)


def test_grid_sigkill_leaves_no_orphans(tmp_path):
    proc, kids, ck = _start_grid(tmp_path)
    got_eof = threading.Event()
    def reader():
        proc.stdout.read(); got_eof.set()                    # returns when every holder of the pipe has closed it
    threading.Thread(target=reader, daemon=True).start()
    try:
        proc.kill()
        proc.wait(timeout=10)
        left = _gone_within(kids, 5)
        assert not left, f'{len(left)} worker processes still running 5 s after SIGKILL of the parent'  # needs h-search
        assert got_eof.wait(5), 'the stdout pipe is still held open'                                    # needs h-search
    finally: _cleanup(proc, kids)


def test_fit_sigterm_keeps_the_old_model(tmp_path):
    "SIGTERM during `wrmf-nb fit --out M` over an existing M: exit code 143, one line, M still the old model."
    m = tmp_path / 'M'
    subprocess.run(CLI + ['fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '2', '-q', '--out', str(m)],
                   env=ENV, check=True, capture_output=True, timeout=120)
    before = (m / 'ids.json').read_text()
    proc = subprocess.Popen(CLI + ['fit', '--synthetic', 'small', '--factors', '64', '--iterations', '100000',
                                   '-q', '--out', str(m)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 143, err.decode()[-2000:]
        assert err.decode().strip().splitlines()[-1] == 'wrmf-nb: terminated'
        assert 'Traceback' not in err.decode()
        assert (m / 'ids.json').read_text() == before
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()


def test_grid_leaves_no_lock_file(tmp_path):
    "A clean finish of `grid --checkpoint X` leaves X and nothing else (needs h-search: it removes X.lock)."
    ck = tmp_path / 'g.ckpt'
    r = subprocess.run(CLI + ['grid', '--synthetic', 'tiny', '--factors', '4', '--alpha', '10', '--epochs', '1', '2', '1',
                              '-q', '--checkpoint', str(ck)], env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['g.ckpt']
