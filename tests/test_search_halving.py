"""Tests for wrmf_nb.search.halving_search: successive halving against the exhaustive grid, in-process, in worker
processes and on Dask, interrupted and resumed from its checkpoint."""
import json

import numpy as np
import pytest

from wrmf_nb.als import ALS
from wrmf_nb.search import (Checkpoint, best_params, grid_search_learning_curve, halving_from_curves, halving_rungs,
                            halving_search, search_table)

EPOCHS = [1, 2, 3, 4]
GRID = {'num_factors': [4, 8], 'regularization': [0.1, 10.0], 'alpha': [1, 5, 40]}   # 12 configurations
QUIET = dict(verbose=False, progress=False)


@pytest.fixture(scope='module')
def exhaustive(data):
    train, test, users = data
    return grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, **QUIET)


@pytest.fixture(scope='module')
def halved(data):
    train, test, users = data
    return halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, **QUIET)


def test_rungs():
    assert halving_rungs(range(2, 40, 2), eta=2) == [2, 4, 8, 16, 32, 38]
    assert halving_rungs(EPOCHS, eta=2) == [1, 2, 4]
    assert halving_rungs(range(1, 11), eta=3, first=2) == [2, 6, 10]


def test_curves_are_prefixes_of_the_exhaustive_curves(exhaustive, halved):
    "Training to epoch 4 in rungs (1, 2, 4) gives the numbers of training straight to 4."
    assert [c['params'] for c in halved] == [c['params'] for c in exhaustive]
    for h, g in zip(halved, exhaustive):
        n = len(h['epochs'])
        assert h['epochs'] == g['epochs'][:n]
        for m in ('patk', 'mse'):
            for s in ('train', 'test'): assert h[m][s] == g[m][s][:n]
    # 12 configurations at epoch 1, the best 6 to epoch 2, the best 3 to epoch 4
    assert sorted(c['epochs'][-1] for c in halved) == [1] * 6 + [2] * 3 + [4] * 3
    assert halved == halving_from_curves(exhaustive, eta=2)


def test_same_winner_as_the_exhaustive_search(exhaustive, halved):
    assert best_params(halved) == best_params(exhaustive)
    table = search_table({'grid': (exhaustive, 10.0), 'halving': (halved, 2.0)})
    assert table['gap %'].tolist() == [0.0, 0.0] and table['time fraction'].tolist() == [1.0, 0.2]
    assert table['epochs evaluated'].tolist() == [48, 6 * 1 + 3 * 2 + 3 * 4]


def test_ties_are_broken_in_grid_order(data):
    "Two identical configurations (a list of grids): the first in grid order survives."
    train, test, users = data
    twice = [{'num_factors': [4], 'alpha': [5]}, {'num_factors': [4], 'alpha': [5]}]
    got = halving_search(ALS(random_state=0), train, test, twice, users, epochs=[1, 2], eta=2, **QUIET)
    assert [c['epochs'] for c in got] == [[1, 2], [1]]


def test_explicit_rungs_and_a_state_that_is_trained_again(data, exhaustive):
    train, test, users = data
    got = halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=3, rungs=[2], **QUIET)
    assert got == halving_from_curves(exhaustive, eta=3, rungs=[2, 4])
    assert sorted(c['epochs'][-1] for c in got) == [2] * 8 + [4] * 4


def test_worker_processes_give_identical_results(data, halved):
    train, test, users = data
    par = halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, n_jobs=2, **QUIET)
    assert par == halved


def test_dask_local_cluster(data, halved, tmp_path):
    distributed = pytest.importorskip('distributed')
    train, test, users = data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=':0',
                                  protocol='tcp://', host='127.0.0.1') as cluster, distributed.Client(cluster) as client:
        got = halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, client=client,
                             checkpoint=tmp_path / 'dask.jsonl', **QUIET)
    assert got == halved
    assert not (tmp_path / 'dask.jsonl.states').exists()        # removed once complete


class Crash(Exception): pass


def _interrupted(data, ck, when):
    "Run the halving search with a model that raises at its `when`-th fit call after the first rung."
    train, test, users = data
    calls = []
    def crash(sweep, model):
        calls.append(sweep)
        if len(calls) == when: raise KeyboardInterrupt('simulated Ctrl-C')
    with pytest.raises(KeyboardInterrupt):
        halving_search(ALS(random_state=0, callback=crash), train, test, GRID, users, epochs=EPOCHS, eta=2,
                       checkpoint=ck, **QUIET)


@pytest.mark.parametrize('keep_states', [True, False])
def test_resume_after_an_interruption(data, halved, tmp_path, keep_states):
    "Interrupted in the second rung, resumed: the same result; finished rung work is not done again."
    train, test, users = data
    ck = tmp_path / 'halving.jsonl'
    _interrupted(data, ck, when=12 + 2 + 1)   # 12 one-sweep jobs to epoch 1, two from 1 to 2, then the third
    lines = ck.read_text().splitlines()
    assert len(lines) == 1 + 12 + 2
    at_2 = [json.loads(l)['curve']['params'] for l in lines[-2:]]   # reached rung 2 before the interruption
    states = ck.with_name(ck.name + '.states')
    assert len(list(states.glob('*.npz'))) == 6                 # the survivors of rung 1, to continue
    if not keep_states:                                         # gone: those sweeps are trained again
        for f in states.glob('*.npz'): f.unlink()
    sweeps = []
    resumed = halving_search(ALS(random_state=0, callback=lambda s, m: sweeps.append(s)), train, test, GRID, users,
                             epochs=EPOCHS, eta=2, checkpoint=ck, **QUIET)
    assert resumed == halved
    # 4 configurations left from epoch 1 to 2, then 3 from 2 to 4; without the states, each of the 4 trains its
    # first sweep again, and a survivor that had reached epoch 2 before the interruption its first two
    again_2 = sum(c['params'] in at_2 and c['epochs'][-1] == 4 for c in halved)
    assert len(sweeps) == 4 + 3 * 2 + (0 if keep_states else 4 + 2 * again_2)
    assert not states.exists()
    # a third run finds everything and trains nothing
    again = halving_search(ALS(random_state=0, callback=lambda s, m: 1 / 0), train, test, GRID, users,
                           epochs=EPOCHS, eta=2, checkpoint=ck, **QUIET)
    assert again == halved


def test_checkpoint_records_and_fingerprint(data, halved, tmp_path):
    "Each rung appends the longer curve; a grid checkpoint and a halving checkpoint refuse each other."
    train, test, users = data
    ck = tmp_path / 'h.jsonl'
    halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, checkpoint=ck, **QUIET)
    head, *recs = [json.loads(l) for l in ck.read_text().splitlines()]
    assert head['fingerprint']['search']['method'] == 'successive halving'
    assert head['fingerprint']['search']['rungs'] == [1, 2, 4]
    assert len(recs) == 12 + 6 + 3 and [len(r['curve']['epochs']) for r in recs[-3:]] == [4, 4, 4]
    with pytest.raises(ValueError, match=r"written for a different search \(search: checkpoint has \{"):
        grid_search_learning_curve(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, checkpoint=ck,
                                   **QUIET)
    with pytest.raises(ValueError, match=r"different search \(search: checkpoint has \{.*'eta': 2"):
        halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=3, checkpoint=ck, **QUIET)
    with pytest.raises(ValueError, match=r"different search \(search: checkpoint has \{.*'grid': '12 config"):
        halving_search(ALS(random_state=0), train, test, {**GRID, 'alpha': [1, 5]}, users, epochs=EPOCHS, eta=2,
                       checkpoint=ck, **QUIET)
    grid_ck = tmp_path / 'g.jsonl'
    grid_search_learning_curve(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=EPOCHS,
                               checkpoint=grid_ck, **QUIET)
    with pytest.raises(ValueError, match=r"search: checkpoint has None, this search has \{'method'"):
        halving_search(ALS(random_state=0), train, test, {'num_factors': [4]}, users, epochs=EPOCHS,
                       checkpoint=grid_ck, **QUIET)


@pytest.mark.parametrize('kw, message', [
    (dict(eta=1), r"^eta must be an integer >= 2 \(each rung keeps the best 1/eta\), got 1$"),
    (dict(eta=2.5), r"^eta must be an integer >= 2 .* got 2.5$"),
    (dict(eta=True), r"^eta must be an integer >= 2 .* got True$"),
    (dict(rungs=[3, 2]), r"^rungs must be increasing epochs taken from epochs \[1, 2, 3, 4\], got \[3, 2\]$"),
    (dict(rungs=[5]), r"^rungs must be increasing epochs taken from epochs"),
    (dict(rungs=[]), r"^rungs must be increasing epochs taken from epochs"),
    (dict(rungs=2), r"^rungs must be increasing epochs taken from epochs .* got 2$"),
])
def test_bad_arguments(data, kw, message):
    train, test, users = data
    with pytest.raises(ValueError, match=message):
        halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, **kw, **QUIET)


def test_failing_configuration_is_named(data):
    train, test, users = data
    with pytest.raises(ValueError, match=r"configuration \{'num_factors': 0\} failed: ValueError: num_factors"):
        halving_search(ALS(random_state=0), train, test, {'num_factors': [4, 0]}, users, epochs=[1, 2], **QUIET)


def test_verbose_log(data, capsys):
    train, test, users = data
    halving_search(ALS(random_state=0), train, test, {'num_factors': [4, 8]}, users, epochs=[1, 2], eta=2,
                   progress=False)
    out = capsys.readouterr().out
    assert out.count('num_factors: ') == 3 and out.count('p@k test') == 3


def test_only_possible_survivors_keep_their_vectors(data, halved, monkeypatch):
    "At most n_kept + 1 configurations have vectors on disk at any time: the others are deleted as soon as beaten."
    from wrmf_nb import search
    train, test, users = data
    live, most = set(), [0]
    put, drop = search._States.put, search._States.drop
    def tracked_put(self, params, state):
        put(self, params, state); live.add(repr(params)); most[0] = max(most[0], len(live))
    def tracked_drop(self, params):
        drop(self, params); live.discard(repr(params))
    monkeypatch.setattr(search._States, 'put', tracked_put)
    monkeypatch.setattr(search._States, 'drop', tracked_drop)
    got = halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, **QUIET)
    assert got == halved and most[0] <= 6 + 1


def test_resume_in_worker_processes(data, halved, tmp_path):
    "Interrupted here, resumed in two worker processes: the saved vectors travel to the workers; the same result."
    train, test, users = data
    ck = tmp_path / 'halving.jsonl'
    _interrupted(data, ck, when=12 + 2 + 1)
    got = halving_search(ALS(random_state=0), train, test, GRID, users, epochs=EPOCHS, eta=2, n_jobs=2,
                         checkpoint=ck, **QUIET)
    assert got == halved


def test_halving_from_curves_needs_epochs(exhaustive):
    with pytest.raises(ValueError, match=r"^halving_from_curves needs curves with their 'epochs'"):
        halving_from_curves([])
    with pytest.raises(ValueError, match=r"^halving_from_curves needs curves with their 'epochs'"):
        halving_from_curves([{k: v for k, v in c.items() if k != 'epochs'} for c in exhaustive])
