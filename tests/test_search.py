"Tests for wrmf_nb.search: learning curves, the grid search in-process, in worker processes and on Dask, checkpoints."
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from wrmf_nb.als import ALS
from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
from wrmf_nb.metrics import calculate_mse, precision_at_k
from wrmf_nb.search import (Checkpoint, best_params, curves_to_frame, format_log, grid_search_learning_curve,
                            learning_curve, load_curves, parameter_grid, print_log, save_curves, search_fingerprint,
                            threads_per_worker)
from wrmf_nb.split import train_test_split

EPOCHS = [1, 3]
GRID = {'num_factors': [4, 8], 'regularization': [0.1], 'alpha': [5, 40]}


@pytest.fixture(scope='module')
def data():
    likes = likes_matrix(threshold_likes(synthetic_likes(n_users=2500, n_items=1200, n_likes=25_000, seed=7),
                                         5, 5, verbose=False))
    return train_test_split(likes, 5, fraction=0.2, seed=0)


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
    train, test, users = data
    ck = tmp_path / 'ck.jsonl'
    grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                               verbose=False, progress=False)
    text = ck.read_text().splitlines(keepends=True)
    ck.write_text(''.join(text[:-1]) + text[-1][:len(text[-1]) // 2])   # the last record torn in half
    got = grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                                     verbose=False, progress=False)
    assert got == reference
    assert all(json.loads(l) for l in ck.read_text().splitlines())


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
        with pytest.raises(RuntimeError, match='is in use by another running search'):
            grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=[1],
                                       checkpoint=ck, verbose=False, progress=False)
    got = grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=[1],
                                     checkpoint=ck, verbose=False, progress=False)
    assert len(got) == 1
    with checkpoint_lock(ck): pass                   # released after the search
