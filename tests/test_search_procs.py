"""Real processes: a grid search in worker processes (n_jobs=2) killed with SIGKILL or stopped with SIGTERM
leaves no worker behind, lets a reader of its output see the end of it, and leaves a checkpoint to resume from."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

psutil = pytest.importorskip('psutil')
pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='process tests use Linux signals')

# Configurations with more than 2 factors sleep 0.5 s after every sweep (the callback is not part of the
# checkpoint's fingerprint), so they are still running when the test strikes; the 2-factor one finishes at once.
SCRIPT = textwrap.dedent('''
    import os, signal, sys, time
    from wrmf_nb.als import ALS
    from wrmf_nb.data import likes_matrix, synthetic_likes
    from wrmf_nb.search import grid_search_learning_curve
    from wrmf_nb.split import train_test_split

    class Terminated(KeyboardInterrupt): pass          # what the command line turns SIGTERM into

    def on_term(signum, frame): raise Terminated('SIGTERM')

    def pace(sweep, model):
        if model.num_factors > 2: time.sleep(0.5)

    SWEEPS = {}

    def pace_then_fail(sweep, model):                  # the 2-factor configuration fails after 2 s
        time.sleep(0.5)
        SWEEPS[id(model)] = SWEEPS.get(id(model), 0) + 1
        if model.num_factors == 2 and SWEEPS[id(model)] >= 4: raise ValueError('diverged (a test)')

    if __name__ == '__main__':
        signal.signal(signal.SIGTERM, on_term)
        ck, mode = sys.argv[1], sys.argv[2]
        likes = likes_matrix(synthetic_likes(n_users=300, n_items=150, n_likes=4000, seed=1))
        train, test, users = train_test_split(likes, 3, fraction=0.2, seed=0)
        base = ALS(random_state=0, callback={'slow': pace, 'fail': pace_then_fail}.get(mode))
        grid = {'num_factors': [2, 3, 4, 5]}
        print('parent', os.getpid(), flush=True)
        t0 = time.time()
        try:
            curves = grid_search_learning_curve(base, train, test, grid, users,
                                                epochs=[1, 2, 60], n_jobs=2, checkpoint=ck, verbose=True,
                                                progress=False)
        except KeyboardInterrupt:
            print('interrupted', flush=True)
            sys.exit(143)
        except Exception as e:
            import multiprocessing
            print(f'failed after {time.time() - t0:.1f} s with {len(multiprocessing.active_children())} '
                  f'workers left: {type(e).__name__}: {e}', flush=True)
            sys.exit(1)
        print('done', len(curves), flush=True)
''')


def _start(tmp_path, mode='slow'):
    script, ck = tmp_path / 'grid.py', tmp_path / 'ck.jsonl'
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(ck), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy())
    return proc, ck


def _wait_for_workers(proc, ck, timeout=60):
    "Wait until the fast configuration is saved and the slow ones run in two workers; return all descendants."
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, 'the search ended before the test could strike'
        kids = psutil.Process(proc.pid).children(recursive=True)
        workers = [k for k in kids if k.ppid() == proc.pid and 'resource_tracker' not in ' '.join(k.cmdline())]
        if ck.exists() and len(ck.read_bytes().splitlines()) >= 2 and len(workers) >= 2:
            return kids
        time.sleep(0.05)
    raise AssertionError('workers did not start in time')


def _alive(p):
    try: return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess: return False


def _wait_gone(procs, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in procs): time.sleep(0.05)
    return [p.pid for p in procs if _alive(p)]


def _read_all(stream, timeout):
    "Read `stream` to its end in a thread; (data, whether EOF came within `timeout`)."
    out = []
    t = threading.Thread(target=lambda: out.append(stream.read()), daemon=True)
    t.start(); t.join(timeout)
    return (out[0] if out else b''), not t.is_alive()


def _cleanup(proc, kids):
    for p in [*kids, psutil.Process(proc.pid) if proc.poll() is None else None]:
        if p is None: continue
        try: p.kill()
        except psutil.NoSuchProcess: pass
    proc.wait()


def _whole_records(ck):
    "The checkpoint loads without a warning, every line is whole: the number of finished configurations."
    lines = ck.read_bytes().split(b'\n')
    assert lines[-1] == b'', 'the checkpoint does not end with a whole line'
    recs = [json.loads(l) for l in lines[1:-1]]
    assert all(set(r) == {'key', 'curve'} for r in recs)
    return len(recs)


def test_sigkill_of_the_parent_leaves_no_worker(tmp_path):
    proc, ck = _start(tmp_path)
    kids = []
    try:
        kids = _wait_for_workers(proc, ck)
        t0 = time.time()
        os.kill(proc.pid, signal.SIGKILL)                          # the parent only, not its process group
        proc.wait()
        _, eof = _read_all(proc.stdout, 10)
        assert eof, "the search's output was still held open 10 s after its process was killed"
        left = _wait_gone(kids, 5)
        assert not left, f'processes {left} outlived their killed parent'
        assert time.time() - t0 < 10
        assert _whole_records(ck) >= 1
    finally:
        _cleanup(proc, kids)


def test_sigterm_stops_the_search_promptly_and_it_resumes(tmp_path):
    proc, ck = _start(tmp_path)
    kids = []
    try:
        kids = _wait_for_workers(proc, ck)
        t0 = time.time()
        os.kill(proc.pid, signal.SIGTERM)
        try: rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired: raise AssertionError('the search did not stop within 10 s of SIGTERM')
        took = time.time() - t0
        out, eof = _read_all(proc.stdout, 5)
        assert eof and rc == 143 and b'interrupted' in out, (rc, out)
        assert took < 5, f'SIGTERM took {took:.1f} s: the search waited for the configurations in flight'
        left = _wait_gone(kids, 5)
        assert not left, f'processes {left} outlived the interrupted search'
        done = _whole_records(ck)
        assert 1 <= done < 4
        assert not ck.with_name(ck.name + '.lock').exists()
    finally:
        _cleanup(proc, kids)
    before = ck.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = subprocess.run([sys.executable, str(tmp_path / 'grid.py'), str(ck), 'fast'], capture_output=True,
                               timeout=120, env=os.environ.copy())
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert f'{done} of 4 configurations taken from'.encode() in again.stdout and b'done 4' in again.stdout
    after = ck.read_bytes()
    assert after.startswith(before) and _whole_records(ck) == 4     # the saved records kept, the rest appended


def test_a_failing_configuration_stops_the_workers_at_once(tmp_path):
    "A configuration that fails ends the search at once: the slow ones in flight are not waited for."
    script, ck = tmp_path / 'grid.py', tmp_path / 'ck.jsonl'
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(ck), 'fail'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy(), start_new_session=True)
    try: stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)                        # the search and any worker it left
        proc.communicate()
        raise AssertionError('the search went on for 30 s after a configuration failed')
    out = stdout.decode()
    assert proc.returncode == 1 and 'with 0 workers left: ValueError: configuration {' in out, out + stderr.decode()
    took = float(out.split('failed after ')[1].split(' s')[0])
    assert took < 15, out
    assert _whole_records(ck) == 0 and not ck.with_name(ck.name + '.lock').exists()
