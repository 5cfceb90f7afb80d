"Kill tests for `ALS.save`: a model saved over an existing one and killed with SIGKILL mid-save leaves a loadable model."
import os, signal, subprocess, sys, textwrap, time

import numpy as np
import pytest

from wrmf_nb.als import ALS

pytestmark = pytest.mark.skipif(not hasattr(signal, 'SIGKILL'), reason='needs SIGKILL (POSIX)')

N_USERS, N_ITEMS, F = 200_000, 100_000, 40     # 2 x 48 MB of float32 vectors: a save takes a noticeable time

_SAVER = textwrap.dedent('''
    import sys, numpy as np
    from wrmf_nb.als import ALS
    target, value, n_users, n_items, f = sys.argv[1], float(sys.argv[2]), *map(int, sys.argv[3:6])
    m = ALS(num_factors=f, random_state=int(value))
    m.user_vectors = np.full((n_users, f), value, np.float32)
    m.item_vectors = np.full((n_items, f), -value, np.float32)
    print('ready', flush=True)
    m.save(target)
    print('saved', flush=True)
''')


def _model(value):
    m = ALS(num_factors=F, random_state=int(value))
    m.user_vectors = np.full((N_USERS, F), value, np.float32)
    m.item_vectors = np.full((N_ITEMS, F), -value, np.float32)
    return m


def _temps(folder, name='model.npz'):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f'.{name}.') and p.name.endswith('.tmp'))


def _saved_value(path):
    "The one value the saved model's vectors hold (they are written constant), checking nothing is mixed."
    m = ALS.load(path)
    v = m.user_vectors[0, 0]
    assert m.user_vectors.shape == (N_USERS, F) and m.item_vectors.shape == (N_ITEMS, F)
    assert (m.user_vectors == v).all() and (m.item_vectors == -v).all(), 'a mix of two saves'
    assert m.random_state == int(v)
    return float(v)


def test_kill_during_save_keeps_old_or_new_model(tmp_path):
    target = tmp_path / 'model.npz'
    (tmp_path / 'notes.txt').write_text('not ours')
    (tmp_path / '.other.npz.abc.tmp').write_bytes(b'another target\'s temp file')
    t = time.perf_counter()
    _model(1.0).save(target)                                  # the previous good model
    save_s = time.perf_counter() - t
    script = tmp_path / 'saver.py'
    script.write_text(_SAVER)
    good, outcomes = 1.0, []
    for k, frac in enumerate([0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 3.0], start=2):
        p = subprocess.Popen([sys.executable, str(script), str(target), str(float(k)), str(N_USERS), str(N_ITEMS), str(F)],
                             stdout=subprocess.PIPE, env=dict(os.environ))
        assert p.stdout.readline() == b'ready\n'
        time.sleep(frac * save_s)
        p.send_signal(signal.SIGKILL)
        p.wait()
        got = _saved_value(target)                            # always loadable ...
        assert got in (good, float(k)), (got, good, k)        # ... and exactly the old or the new model
        outcomes.append(got == k)
        good = got
        assert len(_temps(tmp_path)) <= 1, _temps(tmp_path)   # at most the killed write's temp file
    assert not all(outcomes), 'no kill landed inside a save: the test did not test anything'
    _model(99.0).save(target)                                 # a later good save cleans up the dead temp file ...
    assert _saved_value(target) == 99.0 and _temps(tmp_path) == []
    assert (tmp_path / 'notes.txt').read_text() == 'not ours'  # ... and nothing that is not its own
    assert (tmp_path / '.other.npz.abc.tmp').exists()
