"The `wrmf-nb` command: sub-commands run in-process via main([...]) on tiny data, the console script once."
import json, re, os, socket, subprocess, sys, types
from pathlib import Path

import pytest

from wrmf_nb.cli import main, SYNTHETIC_SIZES

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ['demo', 'fit', 'recommend', 'similar', 'grid', 'fetch-sketchfab']


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert 'Traceback' not in err
    return lines[0]


@pytest.fixture(scope='module')
def likes_file(tmp_path_factory):
    "A small likes file in the Sketchfab format, written from the synthetic data."
    from wrmf_nb.data import synthetic_likes
    df = synthetic_likes(**SYNTHETIC_SIZES['tiny'], seed=1)
    p = tmp_path_factory.mktemp('data') / 'likes.psv'
    df[['modelname', 'mid', 'uid']].to_csv(p, sep='|', index=False)
    return p


@pytest.fixture(scope='module')
def fitted(likes_file, tmp_path_factory):
    out = tmp_path_factory.mktemp('model') / 'm'
    assert main(['fit', '--likes', str(likes_file), '--out', str(out), '--factors', '8', '--iterations', '4', '-q']) == 0
    return out


def test_help(capsys):
    rc, out, _ = run(capsys, '--help')
    assert rc == 0 and 'wrmf-nb demo --quick' in out
    for c in COMMANDS: assert c in out
    for c in COMMANDS:
        rc, out, _ = run(capsys, c, '--help')
        assert rc == 0 and 'usage: wrmf-nb ' + c in out
        assert 'examples:' in out, c
    rc, out, _ = run(capsys)          # no command: the overview
    assert rc == 0 and 'usage' in out


def test_usage_errors(capsys):
    rc, _, err = run(capsys, 'recommend', 'somewhere')      # neither --user nor --liked
    assert rc == 2 and 'one of the arguments --user --liked is required' in err
    rc, _, err = run(capsys, 'no-such-command')
    assert rc == 2


def test_missing_and_malformed_likes(capsys, tmp_path):
    missing = tmp_path / 'nope.psv'
    for cmd in (['fit', '--out', str(tmp_path / 'o')], ['grid'], ['demo', '--out', str(tmp_path / 'd')]):
        rc, _, err = run(capsys, *cmd, '--likes', str(missing))
        assert rc == 2
        assert 'likes file not found' in one_line_error(err) and str(missing) in err
    bad = tmp_path / 'bad.psv'
    bad.write_text('user,item,rating\n1,2,3\n4,5,6\n')
    rc, _, err = run(capsys, 'fit', '--likes', str(bad), '--out', str(tmp_path / 'o'))
    assert rc == 2 and 'cannot read likes file' in one_line_error(err)
    empty = tmp_path / 'empty.psv'
    empty.write_text('')
    rc, _, err = run(capsys, 'fit', '--likes', str(empty), '--out', str(tmp_path / 'o'))
    assert rc == 2 and str(empty) in one_line_error(err)
    rc, _, err = run(capsys, 'fit', '--likes', str(tmp_path), '--out', str(tmp_path / 'o'))
    assert rc == 2 and 'is a folder' in one_line_error(err)


def test_fit_recommend_similar(fitted, likes_file, capsys, tmp_path):
    assert {'model.npz', 'likes.npz', 'ids.json'} <= {p.name for p in fitted.iterdir()}
    meta = json.loads((fitted / 'ids.json').read_text())
    uid, mids = meta['idx_to_uid'][0], meta['idx_to_mid']
    rc, out, _ = run(capsys, 'recommend', str(fitted), '--user', str(uid), '-n', '5')
    assert rc == 0 and f'top 5 models for user {uid}' in out
    rc, out, _ = run(capsys, 'recommend', str(fitted), '--user', str(uid), '-n', '5', '--json')
    rec = json.loads(out)
    assert [r['rank'] for r in rec['items']] == [1, 2, 3, 4, 5]
    from wrmf_nb.data import read_likes
    df = read_likes(likes_file, verbose=False)
    liked = set(df[df.uid.astype(str) == str(uid)].mid.astype(str))
    assert not liked & {str(r['mid']) for r in rec['items']}           # liked models are left out
    rc, out, _ = run(capsys, 'recommend', str(fitted), '--liked', str(mids[0]), str(mids[1]), '-n', '3', '--json')
    new = json.loads(out)
    assert rc == 0 and len(new['items']) == 3 and 'fold-in' in new['title']
    html = tmp_path / 'sim.html'
    rc, out, _ = run(capsys, 'similar', str(fitted), '--model', str(mids[3]), '-n', '4', '--html', str(html), '--offline')
    assert rc == 0 and f'models most similar to {mids[3]}' in out
    page = html.read_text()
    assert page.count('<img') == 5 and 'Similar models' in page
    rc, out, _ = run(capsys, 'similar', str(fitted), '--random', '2', '-n', '3', '--json')
    assert rc == 0 and len(out.strip().splitlines()) == 2


def test_model_and_id_errors(fitted, capsys, tmp_path):
    rc, _, err = run(capsys, 'recommend', str(tmp_path / 'none'), '--user', 'x')
    assert rc == 2 and 'no fitted model' in one_line_error(err)
    rc, _, err = run(capsys, 'recommend', str(fitted), '--user', 'no-such-user')
    assert rc == 2 and "user 'no-such-user' is not in the model" in one_line_error(err)
    rc, _, err = run(capsys, 'similar', str(fitted), '--model', 'no-such-model')
    assert rc == 2 and "model 'no-such-model' is not in the model" in one_line_error(err)


def test_grid_with_checkpoint(capsys, tmp_path):
    ck, csv = tmp_path / 'grid.ckpt', tmp_path / 'curves.csv'
    args = ['grid', '--synthetic', 'tiny', '--factors', '4', '8', '--alpha', '10', '--epochs', '1', '3', '1',
            '--checkpoint', str(ck), '--out', str(csv), '-q']
    rc, out, _ = run(capsys, *args)
    assert rc == 0 and '2 configurations' in out and 'p@k test' in out and csv.exists()
    rc, out2, _ = run(capsys, *args)                     # resumes from the checkpoint, same answer
    assert rc == 0 and out2.split('configurations in')[1].split('\n', 1)[1] == out.split('configurations in')[1].split('\n', 1)[1]
    rc, _, err = run(capsys, 'grid', '--synthetic', 'tiny', '--epochs', '5', '1', '1')
    assert rc == 2 and '--epochs' in one_line_error(err)


def test_demo_quick(capsys, tmp_path):
    out = tmp_path / 'demo'
    rc, text, _ = run(capsys, 'demo', '--quick', '--synthetic', 'tiny', '--out', str(out), '--n-models', '2')
    assert rc == 0
    assert 'p@k test' in text and 'planted category' in text
    s = json.loads((out / 'summary.json').read_text())
    assert s['category_agreement@10'] > s['category_baseline']
    for f in s['files']: assert (out / f).exists(), f
    assert any(f.endswith('.png') for f in s['files'])
    page = (out / 'similar.html').read_text()
    assert page.count('Similar models') == 2
    pngs = [f for f in s['files'] if f.endswith('.png')]
    assert page.count('src="data:image/png;base64,') >= len(pngs) and not re.search(r'src="[^"]+\.png"', page)  # stands alone
    assert "{'" not in page and 'The best of the grid has ' in page and ' factors' in page   # a sentence, not a dict
    rc, text, _ = run(capsys, 'similar', str(out / 'model'), '--random', '1', '-n', '3')   # demo's model is reusable
    assert rc == 0


def test_fetch_sketchfab_offline(capsys, tmp_path):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    rc, _, err = run(capsys, 'fetch-sketchfab', '--url', f'http://127.0.0.1:{port}/likes.psv',
                     '--cache-dir', str(tmp_path), '--timeout', '2')
    assert rc == 2 and 'could not fetch' in one_line_error(err)


def test_book_delegates(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType('wrmf_nb.book')
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, 'wrmf_nb.book', fake)
    assert main(['book', '--check-readme']) == 0 and seen == [['--check-readme']]
    def exits(argv): raise SystemExit(3)
    fake.main = exits
    assert main(['book']) == 3


def test_console_script(likes_file, tmp_path):
    exe = Path(sys.executable).with_name('wrmf-nb')
    if not exe.exists(): pytest.skip('wrmf-nb console script not installed (pip install -e .)')
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    r = subprocess.run([str(exe), 'fit', '--likes', str(tmp_path / 'missing.psv'), '--out', str(tmp_path / 'm')],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith('wrmf-nb fit: error: likes file not found')
    assert 'Traceback' not in r.stderr
    r = subprocess.run([str(exe), '--help'], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and 'demo' in r.stdout


def test_says_so_while_compiling(capsys, tmp_path, monkeypatch):
    "Before the first fit on a machine (numba compiling, ~20 s) one line says why nothing moves."
    import wrmf_nb.cli as cli
    monkeypatch.setattr(cli, '_kernels_cached', lambda solver='cg': False)
    rc, _, err = run(capsys, 'fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '2',
                     '--out', str(tmp_path / 'm'))
    assert rc == 0 and 'compiling the ALS kernels' in err
    rc, _, err = run(capsys, 'fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '2', '-q',
                     '--out', str(tmp_path / 'm'))
    assert rc == 0 and 'compiling' not in err                          # -q: nothing on stderr
    monkeypatch.undo()
    assert cli._kernels_cached('cg')                                    # compiled and cached by now
    rc, _, err = run(capsys, 'fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '1', '-q',
                     '--solver', 'cholesky', '--out', str(tmp_path / 'm'))
    assert rc == 0 and cli._kernels_cached('cholesky')               # the worker's cg_steps=None version


def test_outputs_are_replaced_whole(capsys, tmp_path):
    "Outputs are written beside their target and renamed over it: no temporary file is left behind."
    csv = tmp_path / 'curves.csv'
    csv.write_text('old')
    args = ['grid', '--synthetic', 'tiny', '--factors', '4', '--alpha', '10', '--epochs', '1', '2', '1', '-q',
            '--out', str(csv)]
    assert run(capsys, *args)[0] == 0
    assert csv.read_text().startswith('config,num_factors,')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['curves.csv']
    m = tmp_path / 'm'
    for _ in range(2):
        assert run(capsys, 'fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '2', '-q',
                   '--out', str(m))[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['curves.csv', 'm']
    assert sorted(p.name for p in m.iterdir()) == ['ids.json', 'likes.npz', 'model.npz']


def test_confidence_options(capsys, tmp_path):
    "fit --confidence log --epsilon E is saved with the model; grid --confidence linear log makes it a grid key."
    from wrmf_nb.cli import load_fitted
    assert main(['fit', '--synthetic', 'tiny', '--factors', '4', '--iterations', '2', '-q', '--confidence', 'log',
                 '--epsilon', '2.5', '--out', str(tmp_path / 'm')]) == 0
    model, _, _ = load_fitted(tmp_path / 'm')
    assert (model.confidence, model.epsilon) == ('log', 2.5)
    capsys.readouterr()
    assert main(['grid', '--synthetic', 'tiny', '--factors', '4', '--alpha', '1', '--confidence', 'linear', 'log',
                 '--epochs', '2', '4', '2', '-q', '--out', str(tmp_path / 'c.csv')]) == 0
    import pandas as pd
    assert sorted(pd.read_csv(tmp_path / 'c.csv')['confidence'].unique()) == ['linear', 'log']


_LASTFM = Path(os.environ.get('WRMF_NB_DATA', '/nonexistent')) / 'hetrec2011-lastfm-2k' / 'user_artists.dat'


@pytest.mark.skipif(not _LASTFM.is_file(), reason='the Last.fm data is not here: set WRMF_NB_DATA (CI uses ../shared/data)')
def test_demo_on_lastfm(capsys, tmp_path):
    "wrmf-nb demo --lastfm: the real play counts, log confidence, artist names in the page."
    assert main(['demo', '--lastfm', '--out', str(tmp_path / 'o')]) == 0
    summary = json.loads((tmp_path / 'o' / 'summary.json').read_text())
    assert summary['best_params']['confidence'] == 'log' and summary['users'] > 1800
    assert 'Radiohead' in (tmp_path / 'o' / 'similar.html').read_text() or summary['models'] > 2000


def test_lastfm_without_data_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv('WRMF_NB_DATA', str(tmp_path)); monkeypatch.setenv('WRMF_NB_CACHE', str(tmp_path / 'cache'))
    assert main(['fit', '--lastfm', '--out', str(tmp_path / 'm')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'WRMF_NB_DATA' in err and 'fetch_lastfm' in err
    assert main(['fit', '--lastfm', '--likes', 'x.psv', '--out', str(tmp_path / 'm')]) == 2
