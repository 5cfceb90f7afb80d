"Tests for wrmf_nb.search: learning curves, the grid search in-process, in worker processes and on Dask, checkpoints."
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from wrmf_nb.als import ALS
from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
from wrmf_nb.metrics import calculate_mse, precision_at_k
from wrmf_nb.search import (Checkpoint, CheckpointWarning, best_params, curves_to_frame, format_log, grid_search_learning_curve,
                            learning_curve, load_curves, parameter_grid, print_log, save_curves, search_fingerprint,
                            threads_per_worker)
from wrmf_nb.split import train_test_split

EPOCHS = [1, 3]
GRID = {'num_factors': [4, 8], 'regularization': [0.1], 'alpha': [5, 40]}


@pytest.fixture(scope='module')
def reference(data):
    train, test, users = data
    return grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS,
                                      verbose=False, progress=False)


def test_print_log_matches_the_post(capsys):
    print_log(['epochs', 'p@k train'], header=True)
    print_log([2, 0.33988])
    assert capsys.readouterr().out.splitlines() == [
        '+------------+------------+',
        '|   epochs   | p@k train  |',
        '+============+============+',
        '|     2      |  0.33988   |',
        '+------------+------------+']
    assert format_log([10, 0.5], spacing=6) == '|  10  | 0.50000 |\n+------+------+'


def test_learning_curve_post_compatible(data, capsys):
    train, test, users = data
    model, tp, tm, sp_, sm = learning_curve(ALS(num_factors=6, random_state=1), train, test, [2, 5], 5, users)
    out = capsys.readouterr().out
    assert out.count('\n') == 3 + 2 * 2 and 'p@k test' in out
    assert model.sweeps_done == 5 and model.iterations == 3          # the post leaves the last step's iterations
    assert tp[-1] == precision_at_k(model, train, 5, users) and sp_[-1] == precision_at_k(model, test, 5, users)
    assert tm[-1] == calculate_mse(model, train, users) and sm[-1] == calculate_mse(model, test, users)
    # the same numbers as training in one go to the last epoch
    one = ALS(num_factors=6, random_state=1, iterations=2).fit(train)
    one.iterations = 3; one.fit_partial(train)
    np.testing.assert_array_equal(one.user_vectors, model.user_vectors)
    # empty user_index means every user, as in the post
    _, tp_all, *_ = learning_curve(ALS(num_factors=6, random_state=1), train, test, [2], 5, None, verbose=False)
    assert tp_all[0] == precision_at_k(ALS(num_factors=6, random_state=1, iterations=2).fit(train), train, 5)


def test_parameter_grid_order():
    g = parameter_grid({'num_factors': [10, 20], 'regularization': [0.0, 1.0], 'alpha': [1, 50]})
    assert len(g) == 8 and g[0] == {'num_factors': 10, 'regularization': 0.0, 'alpha': 1}
    assert g[1] == {'num_factors': 10, 'regularization': 0.0, 'alpha': 50}        # last key fastest
    assert list(g[0]) == ['num_factors', 'regularization', 'alpha']


def test_grid_results_shape(data, reference):
    train, test, users = data
    assert [c['params'] for c in reference] == parameter_grid(GRID)
    for c in reference:
        assert set(c) == {'params', 'patk', 'mse', 'epochs'} and c['epochs'] == EPOCHS
        assert all(len(c[m][s]) == 2 for m in ('patk', 'mse') for s in ('train', 'test'))
    df = curves_to_frame(reference)
    assert len(df) == 4 * 2 and df.groupby('config').size().tolist() == [2] * 4
    bp = best_params(reference)
    best = max(reference, key=lambda c: max(c['patk']['test']))
    assert {k: bp[k] for k in GRID} == best['params']
    # the curve of a configuration is the learning curve of a fresh model with those parameters
    c = reference[3]
    _, tp, tm, sp_, sm = learning_curve(ALS(random_state=0, **c['params']), train, test, EPOCHS, 5, users, verbose=False)
    assert c['patk'] == {'train': tp, 'test': sp_} and c['mse'] == {'train': tm, 'test': sm}


def test_fitted_base_model_is_not_reused(data, reference):
    train, test, users = data
    fitted = ALS(random_state=0, num_factors=4, iterations=2).fit(train)
    again = grid_search_learning_curve(fitted, train, test, GRID, users, epochs=EPOCHS, verbose=False, progress=False)
    assert again == reference


def test_worker_processes_give_identical_results(data, reference):
    train, test, users = data
    par = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, n_jobs=2,
                                     verbose=False, progress=False)
    assert par == reference


def test_threads_per_worker():
    assert threads_per_worker(1, 2) == 2 and threads_per_worker(2, 2) == 1 and threads_per_worker(4, 2) == 1
    assert threads_per_worker(3, 16) == 5


def test_dask_local_cluster(data, reference, tmp_path):
    distributed = pytest.importorskip('distributed')
    train, test, users = data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=':0',
                                  protocol='tcp://', host='127.0.0.1') as cluster, distributed.Client(cluster) as client:
        got = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, client=client,
                                         checkpoint=tmp_path / 'dask.jsonl', verbose=False, progress=False)
    assert got == reference
    assert len(Checkpoint(tmp_path / 'dask.jsonl', _fp(data))) == 4


def _fp(data, **kw):
    train, test, users = data
    args = dict(base_model=ALS(random_state=0), train=train, test=test, user_index=users, epochs=EPOCHS, patk=5)
    args.update(kw)
    return search_fingerprint(**args)


class Crash(Exception): pass


def test_resume_after_interruption(data, reference, tmp_path):
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    seen = []
    def crash_on_third(sweep, model):                              # a callback is not part of the fingerprint
        key = (model.num_factors, model.alpha)
        if key not in seen: seen.append(key)
        if len(seen) == 3: raise Crash('boom')
    with pytest.raises(RuntimeError, match=r"configuration \{'num_factors': 8, 'regularization': 0.1, 'alpha': 5\} failed"):
        grid_search_learning_curve(ALS(random_state=0, callback=crash_on_third), train, test, GRID, users,
                                   epochs=EPOCHS, checkpoint=ck, verbose=False, progress=False)
    lines = ck.read_text().splitlines()
    assert len(lines) == 1 + 2                                     # header + the two finished configurations
    resumed = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                                         verbose=False, progress=False)
    assert resumed == reference
    assert len(ck.read_text().splitlines()) == 1 + 4               # only the missing two were added


def test_resume_with_a_subset_then_a_bigger_grid(data, reference, tmp_path):
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    sub = {'num_factors': [8], 'regularization': [0.1], 'alpha': [5, 40]}
    part = grid_search_learning_curve(ALS(random_state=0), train, test, sub, users, epochs=EPOCHS, checkpoint=ck,
                                      verbose=False, progress=False)
    assert part == reference[2:]
    before = ck.stat().st_mtime_ns
    full = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                                      n_jobs=2, verbose=False, progress=False)
    assert full == reference
    recs = [json.loads(l) for l in ck.read_text().splitlines()[1:]]
    assert len(recs) == 4 and len({r['key'] for r in recs}) == 4
    assert ck.stat().st_mtime_ns > before


def test_torn_last_line_is_dropped(data, reference, tmp_path):
    "A torn last line (a writer killed mid-append) is dropped with a warning that says so; appends stay valid."
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                               verbose=False, progress=False)
    text = ck.read_text().splitlines(keepends=True)
    ck.write_text(''.join(text[:-1]) + text[-1][:len(text[-1]) // 2])   # the last record torn in half
    with pytest.warns(CheckpointWarning, match=r"ck.jsonl: line 5 is incomplete .*dropped it.* 3 configurations kept"):
        got = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS,
                                         checkpoint=ck, verbose=False, progress=False)
    assert got == reference
    assert ck.read_text().endswith('\n') and len(ck.read_text().splitlines()) == 1 + 4
    assert all(json.loads(l) for l in ck.read_text().splitlines())


def test_last_line_without_its_newline_is_kept(data, reference, tmp_path):
    "A whole last record that only lacks its newline is kept (nothing recomputed), and the next append is a new line."
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    grid_search_learning_curve(ALS(random_state=0), train, test, {**GRID, 'num_factors': [4]}, users, epochs=EPOCHS,
                               checkpoint=ck, verbose=False, progress=False)
    ck.write_bytes(ck.read_bytes()[:-1])
    with pytest.warns(CheckpointWarning, match='line 3 lacks its final newline'):
        got = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS,
                                         checkpoint=ck, verbose=False, progress=False)
    assert got == reference and len([json.loads(l) for l in ck.read_text().splitlines()]) == 1 + 4


def test_corrupt_middle_line_is_reported_and_salvaged(data, reference, tmp_path):
    "A damaged record in the middle: a warning names the file and line, the good records are kept, the original is backed up."
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                               verbose=False, progress=False)
    lines = ck.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"key": "\xff garbage\n'                       # line 3: not UTF-8, not JSON
    lines[3] = b'{"hello": 1}\n'                                # line 4: JSON, but not a record
    original = b''.join(lines)
    ck.write_bytes(original)
    calls = []
    count = lambda sweep, model: calls.append(model.num_factors)
    with pytest.warns(CheckpointWarning) as w:
        got = grid_search_learning_curve(ALS(random_state=0, callback=count), train, test, GRID, users,
                                         epochs=EPOCHS, checkpoint=ck, verbose=False, progress=False)
    msg = str(w[0].message)
    assert 'ck.jsonl' in msg and 'lines 3, 4' in msg and '2 damaged' in msg and '2 configurations kept' in msg, msg
    backup = tmp_path / 'ck.jsonl.damaged'
    assert str(backup) in msg and backup.read_bytes() == original  # the original, byte for byte, beside it
    assert got == reference and len(calls) == 2 * EPOCHS[-1]      # only the two damaged ones were recomputed
    recs = [json.loads(l) for l in ck.read_text().splitlines()]
    assert len(recs) == 1 + 4 and len({r['key'] for r in recs[1:]}) == 4
    with warnings.catch_warnings():                               # the repaired file loads without a word
        warnings.simplefilter('error')
        assert len(Checkpoint(ck, _fp(data))) == 4


@pytest.mark.parametrize('change, message', [
    (dict(epochs=[1, 4]), 'epochs: checkpoint has [1, 3], this search has [1, 4]'),
    (dict(patk=3), 'patk: checkpoint has 5'),
    (dict(base_model=ALS(random_state=1)), 'base_model: checkpoint has'),
    (dict(user_index='drop-one'), 'user_index: checkpoint has'),
    (dict(train='modified'), 'train: checkpoint has'),
    (dict(test='modified'), 'test: checkpoint has'),
])
def test_mismatched_checkpoint_is_refused(data, tmp_path, change, message):
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    small = {'num_factors': [4], 'alpha': [5]}
    grid_search_learning_curve(ALS(random_state=0), train, test, small, users, epochs=EPOCHS, checkpoint=ck,
                               verbose=False, progress=False)
    args = dict(base_model=ALS(random_state=0), train=train, test=test, user_index=users, epochs=EPOCHS, patk=5)
    args.update(change)
    if args['user_index'] == 'drop-one': args['user_index'] = users[1:]
    for name in ('train', 'test'):
        if isinstance(args[name], str):
            m = sp.csr_matrix(data[0] if name == 'train' else data[1], copy=True)
            m.data[0] = 3.0
            args[name] = m
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        grid_search_learning_curve(args['base_model'], args['train'], args['test'], small, args['user_index'],
                                   args['patk'], args['epochs'], checkpoint=ck, verbose=False, progress=False)


def test_not_a_checkpoint(tmp_path, data):
    p = tmp_path / 'x.jsonl'
    p.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match='is not a grid-search checkpoint'):
        Checkpoint(p, _fp(data))


@pytest.mark.parametrize('content, says', [
    (b'{"a": 1}', "it starts with '{\"a\": 1}'"),                     # the example: no newline at all
    (b'{"a": 1}\n{"b": 2}\n', "it starts with '{\"a\": 1}'"),
    (b'hello world', "it starts with 'hello world'"),
    (b'', 'is empty'),
    (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' + bytes(range(256)) * 4, "it starts with b'\\x89PNG"),
    (b'caf\xe9|1|2\nbar|3|4\n', "it starts with b'caf\\xe9|1|2'"),  # Latin-1, not UTF-8
    (b'caf\xe9\n', "it starts with b'caf\\xe9'"),
    (b'{"format": "wrmf_nb.grid-checkpoint/1"\n', 'it starts with'),  # our tag, but no header
])
def test_a_file_that_is_not_a_checkpoint_is_refused_untouched(data, tmp_path, content, says):
    train, test, users = data
    p = tmp_path / 's.json'
    p.write_bytes(content)
    calls = []
    with pytest.raises(ValueError) as e:
        grid_search_learning_curve(ALS(random_state=0, callback=lambda s, m: calls.append(s)), train, test,
                                   {'num_factors': [4]}, users, epochs=EPOCHS, checkpoint=p, verbose=False,
                                   progress=False)
    msg = str(e.value)
    assert str(p) in msg and says in msg and 'not a grid-search checkpoint' in msg and '\n' not in msg, msg
    assert p.read_bytes() == content and not calls                # nothing touched, nothing computed
    assert sorted(x.name for x in tmp_path.iterdir()) == ['s.json']


def test_a_folder_or_an_unwritable_place_fails_before_computing(data, tmp_path):
    train, test, users = data
    calls = []
    run = lambda ck: grid_search_learning_curve(ALS(random_state=0, callback=lambda s, m: calls.append(s)), train,
                                                test, {'num_factors': [4]}, users, epochs=EPOCHS, checkpoint=ck,
                                                verbose=False, progress=False)
    (tmp_path / 'folder').mkdir()
    with pytest.raises(IsADirectoryError, match=r'checkpoint .*folder is a folder, not a file'):
        run(tmp_path / 'folder')
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(NotADirectoryError, match=r'cannot write checkpoint .*notes.txt is not a folder'):
        run(tmp_path / 'notes.txt' / 'ck.jsonl')
    (tmp_path / 'loop1').symlink_to(tmp_path / 'loop2')
    (tmp_path / 'loop2').symlink_to(tmp_path / 'loop1')
    with pytest.raises(OSError, match=r'checkpoint .*loop1 is a loop of symlinks'):
        run(tmp_path / 'loop1')
    assert not calls
    assert (tmp_path / 'loop1').is_symlink() and (tmp_path / 'loop2').is_symlink()
    assert sorted(x.name for x in tmp_path.iterdir()) == ['folder', 'loop1', 'loop2', 'notes.txt']
    assert not any((tmp_path / 'folder').iterdir())


def test_bad_arguments(data):
    train, test, users = data
    with pytest.raises(ValueError, match="ALS has no parameter 'factors'"):
        grid_search_learning_curve(ALS(), train, test, {'factors': [1]}, users, epochs=EPOCHS, progress=False)
    with pytest.raises(ValueError, match="param_grid\\['alpha'\\] must be a list of values"):
        grid_search_learning_curve(ALS(), train, test, {'alpha': 3}, users, epochs=EPOCHS, progress=False)
    with pytest.raises(ValueError, match='epochs must be strictly increasing'):
        grid_search_learning_curve(ALS(), train, test, GRID, users, epochs=[3, 1], progress=False)
    with pytest.raises(ValueError, match='train is'):
        grid_search_learning_curve(ALS(), train, test[:10], GRID, users, epochs=EPOCHS, progress=False)


def test_save_and_load_curves(reference, tmp_path):
    save_curves(reference, tmp_path / 'r.json', meta={'seconds': 1.5})
    back, meta = load_curves(tmp_path / 'r.json')
    assert meta == {'seconds': 1.5} and len(back) == len(reference)
    for a, b in zip(back, reference):
        assert a['params'] == b['params'] and a['epochs'] == b['epochs']
        np.testing.assert_allclose(a['patk']['test'], b['patk']['test'], rtol=1e-6)
    (tmp_path / 'bad.json').write_text('{}')
    with pytest.raises(ValueError, match='is not a grid-results file'):
        load_curves(tmp_path / 'bad.json')


KILL_SCRIPT = textwrap.dedent('''
    import sys
    from wrmf_nb.als import ALS
    from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
    from wrmf_nb.search import grid_search_learning_curve
    from wrmf_nb.split import train_test_split
    if __name__ == '__main__':
        likes = likes_matrix(threshold_likes(synthetic_likes(n_users=2500, n_items=1200, n_likes=25_000, seed=7),
                                             5, 5, verbose=False))
        train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
        grid = {'num_factors': [4, 8, 12, 16, 20, 24], 'regularization': [0.1], 'alpha': [5, 40]}
        grid_search_learning_curve(ALS(random_state=0), train, test, grid, users, epochs=[1, 3, 60],
                                   n_jobs=int(sys.argv[2]), checkpoint=sys.argv[1], verbose=False, progress=False)
''')


@pytest.mark.parametrize('n_jobs', [1, 2])
def test_killed_search_loses_only_configurations_in_flight(tmp_path, n_jobs):
    "SIGKILL a real search as soon as one configuration is saved: what was saved is complete and correct."
    script, ck = tmp_path / 'run.py', tmp_path / 'ck.jsonl'
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(ck), str(n_jobs)], start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if ck.exists() and len(ck.read_bytes().splitlines()) >= 2: break
            time.sleep(0.05)
        assert proc.poll() is None, 'the search finished before it could be killed'
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    saved = ck.read_bytes().splitlines()
    assert 2 <= len(saved) < 1 + 12
    likes = likes_matrix(threshold_likes(synthetic_likes(n_users=2500, n_items=1200, n_likes=25_000, seed=7),
                                         5, 5, verbose=False))
    train, test, users = train_test_split(likes, 5, fraction=0.2, seed=0)
    done = [json.loads(l)['curve'] for l in saved[1:] if l.endswith(b'}')]
    for c in done:                         # what was saved before the kill is exactly what a clean run computes
        _, tp, tm, sp_, sm = learning_curve(ALS(random_state=0, **c['params']), train, test, [1, 3, 60], 5, users,
                                            verbose=False)
        assert c['patk'] == {'train': tp, 'test': sp_} and c['mse'] == {'train': tm, 'test': sm}


def test_non_json_parameter_values_checkpoint(data, tmp_path):
    "Parameter values such as dtypes are keyed by name in the checkpoint and come back as the original objects."
    train, test, users = data
    grid = {'num_factors': [4], 'dtype': [np.float32, np.float64]}
    ck = tmp_path / 'ck.jsonl'
    first = grid_search_learning_curve(ALS(random_state=0), train, test, grid, users, epochs=[1], checkpoint=ck,
                                       verbose=False, progress=False)
    again = grid_search_learning_curve(ALS(random_state=0), train, test, grid, users, epochs=[1], checkpoint=ck,
                                       verbose=False, progress=False)
    assert again == first and again[0]['params']['dtype'] is np.float32
    assert '"dtype": "float32"' in ck.read_text()


def test_one_search_per_checkpoint(data, tmp_path):
    from wrmf_nb.search import checkpoint_lock
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    with checkpoint_lock(ck):                        # as if another search were running on this file
        with pytest.raises(OSError, match='is in use by another running search') as e:
            grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=[1],
                                       checkpoint=ck, verbose=False, progress=False)
        assert '\n' not in str(e.value)
    got = grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=[1],
                                     checkpoint=ck, verbose=False, progress=False)
    assert len(got) == 1
    with checkpoint_lock(ck): pass                   # released after the search
    assert sorted(x.name for x in tmp_path.iterdir()) == ['ck.jsonl']   # no .lock file left behind


def test_lock_through_a_symlink_is_the_same_lock(tmp_path):
    from wrmf_nb.search import checkpoint_lock
    real = tmp_path / 'real' / 'ck.jsonl'
    real.parent.mkdir()
    real.write_text('')
    link = tmp_path / 'link.jsonl'
    link.symlink_to(real)
    with checkpoint_lock(link):
        with pytest.raises(OSError, match='in use'):
            checkpoint_lock(real).__enter__()
        with pytest.raises(OSError, match='in use'):
            checkpoint_lock(tmp_path / 'real' / '..' / 'real' / 'ck.jsonl').__enter__()
    with checkpoint_lock(real): pass
    assert not (tmp_path / 'real' / 'ck.jsonl.lock').exists() and not (tmp_path / 'link.jsonl.lock').exists()


def test_lock_file_replaced_while_locking_is_retried(tmp_path, monkeypatch):
    "If the .lock file is unlinked (a finishing search) between open and flock, the lock is taken again on the new file."
    from wrmf_nb import search
    ck = tmp_path / 'ck.jsonl'
    lock = tmp_path / 'ck.jsonl.lock'
    real_open, opened = os.open, []
    def racy_open(path, *a, **kw):
        fd = real_open(path, *a, **kw)
        if os.path.basename(path) == lock.name and not opened:   # first time: another search removes it
            opened.append(fd)
            os.unlink(lock)
        return fd
    monkeypatch.setattr(search.os, 'open', racy_open)
    with search.checkpoint_lock(ck) as held:
        assert opened and os.fstat(held.fd).st_ino == os.stat(lock).st_ino
        monkeypatch.setattr(search.os, 'open', real_open)
        with pytest.raises(OSError, match='in use'):
            search.checkpoint_lock(ck).__enter__()
    assert not lock.exists()


def test_lock_released_after_a_failed_search(data, tmp_path):
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    with pytest.raises(Exception):
        grid_search_learning_curve(ALS(random_state=0, callback=lambda s, m: 1 / 0), train, test,
                                   {'num_factors': [4]}, users, epochs=[1], checkpoint=ck, verbose=False,
                                   progress=False)
    assert sorted(x.name for x in tmp_path.iterdir()) == ['ck.jsonl']


def test_failing_configuration_keeps_the_kind_of_error(data):
    "A configuration that fails on a bad value fails with a ValueError naming it (a one-line error for the CLI)."
    train, test, users = data
    with pytest.raises(ValueError, match=r"configuration \{'num_factors': 0\} failed: ValueError: num_factors"):
        grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [0]}, users, epochs=[1],
                                   verbose=False, progress=False)


def test_dask_reused_client_reports_the_failing_configuration(data, reference):
    "Two searches on one client: the second one's failure names its own configuration and error."
    distributed = pytest.importorskip('distributed')
    train, test, users = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=':0',
                                  protocol='tcp://', host='127.0.0.1') as cluster, distributed.Client(cluster) as client:
        first = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS,
                                           client=client, verbose=False, progress=False)
        assert first == reference
        for _ in range(2):
            with pytest.raises(ValueError, match=r"configuration \{'num_factors': 0, 'regularization': 0.1, "
                                                 r"'alpha': (5|40)\} failed: ValueError: num_factors must be"):
                grid_search_learning_curve(ALS(random_state=0), train, test, {**GRID, 'num_factors': [4, 0, 8]},
                                           users, epochs=EPOCHS, client=client, verbose=False, progress=False)
        again = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS,
                                           client=client, verbose=False, progress=False)
        assert again == reference


def test_save_curves_is_atomic(reference, tmp_path, monkeypatch):
    "save_curves writes through a temporary file that is fsynced, then renamed; a failed save keeps the old file."
    target = tmp_path / 'r.json'
    save_curves(reference, target, meta={'n': 1})
    old = target.read_bytes()
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, 'fsync', lambda fd: (synced.append(fd), real_fsync(fd)))
    save_curves(reference[:2], target, meta={'n': 2})
    assert synced, 'save_curves did not fsync what it wrote'
    assert load_curves(target)[1] == {'n': 2}
    with pytest.raises(TypeError):
        save_curves(reference, target, meta={'n': 3, 'bad': object()})
    assert load_curves(target)[1] == {'n': 2} and sorted(x.name for x in tmp_path.iterdir()) == ['r.json']
    assert old != target.read_bytes()


def test_confidence_is_a_grid_key(data, tmp_path):
    "The log confidence is searched like any other hyper-parameter, checkpointed and resumed."
    train, test, users = data
    grid = {'num_factors': [4], 'confidence': ['linear', 'log']}
    ck = tmp_path / 'c.jsonl'
    kw = dict(user_index=users, epochs=[1, 2], verbose=False, progress=False, checkpoint=ck)
    curves = grid_search_learning_curve(ALS(random_state=0, alpha=5.0), train, test, grid, **kw)
    assert [c['params']['confidence'] for c in curves] == ['linear', 'log']
    assert curves[0]['patk']['test'] != curves[1]['patk']['test'] or curves[0]['mse'] != curves[1]['mse']
    again = grid_search_learning_curve(ALS(random_state=0, alpha=5.0), train, test, grid, **kw)
    assert again == curves
