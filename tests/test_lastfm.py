"The Last.fm loaders: `load_lastfm` on the real files (skipped without them), `fetch_lastfm` against a local server."
import hashlib, io, os, socket, time, zipfile
from pathlib import Path

import pytest

from wrmf_nb.data import LASTFM_NAME, LASTFM_SHA256, fetch_lastfm, load_lastfm

from http_fixture import local_server, send

REAL = Path(os.environ.get('WRMF_NB_DATA', '/nonexistent')) / LASTFM_NAME
needs_data = pytest.mark.skipif(not (REAL / 'user_artists.dat').is_file(),
                                reason='the Last.fm data is not here: set WRMF_NB_DATA to the folder holding '
                                       'hetrec2011-lastfm-2k/ (CI points it at ../shared/data)')

PLAYS = b'userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t7\r\n'
ARTISTS = b'id\tname\turl\tpictureURL\r\n51\tDuran Duran\thttp://x\thttp://y\r\n52\tMorcheeba\thttp://x\t\r\n'
SUMS = {'user_artists.dat': hashlib.sha256(PLAYS).hexdigest(), 'artists.dat': hashlib.sha256(ARTISTS).hexdigest()}


def make_zip(files:dict)->bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items(): z.writestr(name, data)
    return buf.getvalue()


GOOD = make_zip({'user_artists.dat': PLAYS, 'artists.dat': ARTISTS, 'readme.txt': b'HetRec 2011'})
ROUTES = {
    '/good.zip': (GOOD, len(GOOD)),
    '/cut.zip': (GOOD[:len(GOOD) // 2], len(GOOD)),           # closes before its Content-Length
    '/cut-nolength.zip': (GOOD[:len(GOOD) // 2], None),       # no Content-Length: the zip check decides
    '/altered.zip': (make_zip({'user_artists.dat': PLAYS.replace(b'7', b'8'), 'artists.dat': ARTISTS}), None),
    '/nozip.zip': (b'<html>not found</html>', None),
}


@pytest.fixture
def server():
    routes = {path: (lambda h, b=body, n=length: send(h, b, 'none' if n is None else n))
              for path, (body, length) in ROUTES.items()}
    with local_server(routes) as srv: yield srv


@needs_data
def test_load_lastfm_returns_every_pair_with_names_and_counts():
    df = load_lastfm(verbose=False)
    assert list(df.columns) == ['modelname', 'mid', 'uid', 'plays']
    assert len(df) == 92_834 and df.uid.nunique() == 1_892 and df.mid.nunique() == 17_632
    assert not df.duplicated(['uid', 'mid']).any() and (df.plays > 0).all()
    names = set(df.modelname)
    assert {'The Beatles', 'Britney Spears', 'Radiohead', 'Metallica'} <= names
    assert df.modelname.notna().all() and df.mid.map(type).eq(str).all() and df.uid.map(type).eq(str).all()


@needs_data
def test_the_shared_copy_is_the_published_one():
    assert fetch_lastfm(cache_dir=REAL.parent, show_progress=False) == REAL     # found valid: no download


def test_missing_data_says_both_ways_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv('WRMF_NB_DATA', str(tmp_path / 'nothing'))
    with pytest.raises(FileNotFoundError) as e: load_lastfm(cache_dir=tmp_path / 'cache')
    msg = str(e.value)
    assert 'WRMF_NB_DATA' in msg and 'fetch_lastfm()' in msg and len(msg.splitlines()) == 1


def test_fetch_unpacks_a_good_zip_into_the_cache(server, tmp_path):
    got = fetch_lastfm(tmp_path, url=server.url + '/good.zip', checksums=SUMS, show_progress=False)
    assert got == tmp_path / LASTFM_NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == [LASTFM_NAME]           # the zip is gone
    df = load_lastfm(got, verbose=False)
    assert df.to_dict('list') == {'modelname': ['Duran Duran', 'Morcheeba', 'Duran Duran'], 'mid': ['51', '52', '51'],
                                  'uid': ['2', '2', '3'], 'plays': [13883, 11690, 7]}
    # a second call finds it and downloads nothing (the server would not even be needed)
    assert fetch_lastfm(tmp_path, url='http://127.0.0.1:9/none.zip', checksums=SUMS) == got


@pytest.mark.parametrize('route, error, says', [
    ('/cut.zip', ConnectionError, 'cut short'),
    ('/cut-nolength.zip', ValueError, 'not a complete zip'),
    ('/altered.zip', ValueError, 'SHA-256 differs'),
    ('/nozip.zip', ValueError, 'not a complete zip'),
])
def test_fetch_refuses_bad_downloads_and_caches_nothing(server, tmp_path, route, error, says):
    with pytest.raises(error, match=says):
        fetch_lastfm(tmp_path, url=server.url + route, checksums=SUMS, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_fetch_without_a_server_fails_fast(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match='by hand'):
        fetch_lastfm(tmp_path, url=f'http://127.0.0.1:{port}/x.zip', timeout=2, show_progress=False)
    assert time.monotonic() - t0 < 2 and list(tmp_path.iterdir()) == []


def test_a_damaged_file_is_a_one_line_error(tmp_path):
    d = tmp_path / LASTFM_NAME; d.mkdir()
    (d / 'user_artists.dat').write_bytes(b'userID\tartistID\tweight\n2\t51\tlots\n')
    (d / 'artists.dat').write_bytes(ARTISTS)
    with pytest.raises(ValueError, match=r"line 2: weight 'lots' is not a play count"): load_lastfm(d, verbose=False)


def test_build_likes_takes_counts_from_a_column():
    import pandas as pd
    from wrmf_nb.data import build_likes, likes_matrix
    df = pd.DataFrame({'uid': ['a', 'a', 'b', 'b'], 'mid': ['x', 'y', 'x', 'x'], 'plays': [5, 0, 2, 3]})
    m, maps = build_likes(df, counts='plays')
    assert m.toarray().tolist() == [[5.0, 0.0], [5.0, 0.0]] and m.nnz == 2     # a 0 is no like; repeats add up
    assert (likes_matrix(df, counts='plays') != m).nnz == 0
    assert build_likes(df)[0].toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]  # default: one like per pair
    with pytest.raises(ValueError, match="not a column"): build_likes(df, counts='weight')
    with pytest.raises(ValueError, match=r"the first in row 1 = 'lots'"):
        build_likes(df.assign(plays=[1, 'lots', 2, 3]), counts='plays')


@needs_data
def test_lastfm_counts_are_play_counts():
    from wrmf_nb.data import build_likes
    df = load_lastfm(verbose=False)
    m, maps = build_likes(df, counts='plays')
    assert m.nnz == 92_834 and m.sum() == df.plays.sum()
    u, a = maps.uid_to_idx['2'], maps.mid_to_idx['51']
    assert m[u, a] == 13883                                           # user 2 played Duran Duran 13,883 times
