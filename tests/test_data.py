"Tests for wrmf_nb.data that do not belong in the chapter: file round trips, the download code path, edge cases."
import csv, hashlib, http.server, socket, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse

from wrmf_nb.data import (LIKES_COLUMNS, PSV_DIALECT, build_likes, fetch_sketchfab, id_maps, likes_matrix,
                          likes_stats, post_threshold_likes, read_likes, synthetic_likes, threshold_likes)


def write_psv(path, rows, header=LIKES_COLUMNS):
    "Write rows the way the crawl did (csv module, the Sketchfab dialect)."
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, **PSV_DIALECT)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------- read_likes

AWKWARD = [['plain name', 'm1', 'u1'], ['pipe | in it', 'm2', 'u1'], ['back\\slash', 'm3', 'u2'],
           ['"double" quotes', 'm4', 'u2'], ['both \\ and |', 'm5', 'u3'], ['', 'm6', 'u3'],
           ['ünïcödé ΕΣΤΙΑ 「Bismarck」', 'm7', 'u4']]


def test_read_round_trip(tmp_path, capsys):
    df = read_likes(write_psv(tmp_path / 'a.psv', AWKWARD))
    assert df.values.tolist() == AWKWARD
    assert df.columns.tolist() == LIKES_COLUMNS
    assert all(str(t) == 'str' for t in df.dtypes)
    assert '0 duplicated rows' in capsys.readouterr().out


def test_read_duplicates_dropped_and_reported(tmp_path, capsys):
    rows = AWKWARD + AWKWARD[:3] + [AWKWARD[0]]
    df = read_likes(write_psv(tmp_path / 'd.psv', rows))
    assert df.values.tolist() == AWKWARD
    assert df.index.tolist() == list(range(len(AWKWARD)))
    assert '11 rows, 4 duplicated rows dropped' in capsys.readouterr().out
    read_likes(tmp_path / 'd.psv', verbose=False)
    assert capsys.readouterr().out == ''


def test_read_crlf_and_blank_lines(tmp_path):
    p = tmp_path / 'crlf.psv'
    p.write_bytes(b'modelname|mid|uid\r\na|m1|u1\r\n\r\nb|m2|u2\r\n')
    assert read_likes(p, verbose=False).values.tolist() == [['a', 'm1', 'u1'], ['b', 'm2', 'u2']]


@pytest.mark.parametrize('text, where', [
    ('modelname|mid|uid\na|m1|u1\nb|m2|u2|x\n', 'line 3: 4 fields'),
    ('modelname|mid|uid\na|m1|u1\nb|m2\n', 'line 3: 2 fields'),
    ('modelname|mid|uid\na|m1|u1\n\nb|m2\n', 'line 4: 2 fields'),
    ('modelname|mid|uid\na||u1\n', 'line 2: empty mid'),
    ('modelname|mid|uid\na|m1| \n', 'line 2: empty uid'),
    ('modelname|mid|uid\na|m1|\n', 'line 2: empty uid'),
    ('modelname|mid|uid\n\\multi\nline\\|m1|u1\nb|m2\n', 'line 4: 2 fields'),
    ('modelname|mid\na|m1\n', 'line 1: expected the header'),
    ('uid|mid|modelname\nu1|m1|a\n', 'line 1: expected the header'),
    ('', 'line 1: expected the header'),
])
def test_read_malformed(tmp_path, text, where):
    p = tmp_path / 'bad.psv'
    p.write_text(text)
    with pytest.raises(ValueError) as e: read_likes(p)
    assert where in str(e.value) and str(p) in str(e.value)


def test_read_malformed_shows_content(tmp_path):
    p = tmp_path / 'bad.psv'
    p.write_text('modelname|mid|uid\na|m1|u1\nthe offending|line|is|here\n')
    with pytest.raises(ValueError, match=r"'the offending\|line\|is\|here'"): read_likes(p)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='no likes file at'): read_likes(tmp_path / 'nope.psv')


# ---------------------------------------------------------------- threshold_likes

def random_likes(rng, n, n_users, n_items):
    "A messy likes table: skewed ids, duplicates kept, shuffled, non-default index."
    u = (rng.pareto(1.0, n) * 3).astype(int) % n_users
    m = (rng.pareto(1.2, n) * 5).astype(int) % n_items
    df = pd.DataFrame({'modelname': [f'name{i}' for i in m], 'mid': [f'm{i}' for i in m], 'uid': [f'u{i}' for i in u]})
    return df.set_axis(rng.permutation(n) * 3 + 7)


@pytest.mark.parametrize('seed', range(6))
def test_threshold_same_rows_as_post_random(seed):
    rng = np.random.default_rng(seed)
    df = random_likes(rng, 3000, 400, 300)
    for a, b in [(1, 1), (2, 2), (5, 5), (3, 7), (8, 2), (50, 50)]:
        pd.testing.assert_frame_equal(threshold_likes(df, a, b, verbose=False), post_threshold_likes(df, a, b))


def test_threshold_is_a_fixed_point_and_reports(capsys):
    df = synthetic_likes(n_users=3000, n_items=1400, n_likes=30000, seed=1)
    once = threshold_likes(df, 4, 6)
    out = capsys.readouterr().out
    assert 'start' in out and '6/4 core' in out and 'passes' in out and f"{len(df):,}" in out
    pd.testing.assert_frame_equal(threshold_likes(once, 4, 6, verbose=False), once)


def test_threshold_empty_and_missing():
    empty = threshold_likes(pd.DataFrame({'uid': ['a'], 'mid': ['x']}), 2, 2)
    assert len(empty) == 0
    with pytest.raises(ValueError, match='missing mid'):
        threshold_likes(pd.DataFrame({'uid': ['a', 'b'], 'mid': ['x', None]}))


# ---------------------------------------------------------------- id maps and the matrix

def test_matrix_matches_loop_and_maps():
    df = synthetic_likes(n_users=500, n_items=200, n_likes=5000, n_categories=5, seed=2)
    df = pd.concat([df, df.sample(300, random_state=0)])  # some repeated likes, for the counts
    maps = id_maps(df)
    assert list(maps.mid_to_idx) == df.mid.unique().tolist() and list(maps.uid_to_idx) == df.uid.unique().tolist()
    assert all(maps.idx_to_mid[i] == m for m, i in maps.mid_to_idx.items())
    assert all(maps.idx_to_uid[i] == u for u, i in maps.uid_to_idx.items())
    dense = np.zeros((len(maps.uid_to_idx), len(maps.mid_to_idx)))
    for u, m in zip(df.uid, df.mid): dense[maps.uid_to_idx[u], maps.mid_to_idx[m]] += 1
    counts = likes_matrix(df, binary=False)
    assert isinstance(counts, sparse.csr_matrix) and counts.dtype == np.float64 and counts.has_sorted_indices
    np.testing.assert_array_equal(counts.toarray(), dense)
    np.testing.assert_array_equal(likes_matrix(df).toarray(), (dense > 0).astype(float))
    np.testing.assert_array_equal(likes_matrix(df, maps.uid_to_idx, maps.mid_to_idx, binary=False).toarray(), dense)
    m, maps2 = build_likes(df, binary=False)
    assert maps2 == maps
    np.testing.assert_array_equal(m.toarray(), dense)


def test_matrix_with_other_maps():
    df = pd.DataFrame({'uid': ['b', 'a', 'b'], 'mid': ['y', 'x', 'x']})
    m = likes_matrix(df, {'a': 0, 'b': 1, 'c': 2}, {'x': 0, 'y': 1})
    np.testing.assert_array_equal(m.toarray(), [[1, 0], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match="1 mid values are not in mid_to_idx, e.g. 'y'"):
        likes_matrix(df, None, {'x': 0})
    with pytest.raises(ValueError, match='missing uid'):
        likes_matrix(pd.DataFrame({'uid': [None], 'mid': ['x']}))


def test_likes_stats():
    s = likes_stats(pd.DataFrame({'uid': list('aabc'), 'mid': list('xyxz')}))
    assert s == dict(users=3, models=3, likes=4, sparsity=pytest.approx(100 * 4 / 9))


# ---------------------------------------------------------------- synthetic_likes

def test_synthetic_guarantees():
    kw = dict(n_users=3000, n_items=1200, n_likes=30000, n_categories=8, seed=5)
    df = synthetic_likes(**kw)
    assert df.columns.tolist() == LIKES_COLUMNS + ['category']
    assert all(str(t) == 'str' for t in df.dtypes)
    assert len(df) == 30000 and df.uid.nunique() == 3000 and df.mid.nunique() == 1200
    assert df.category.nunique() == 8 and df.groupby('mid').category.nunique().max() == 1
    assert not df.duplicated(['uid', 'mid']).any()
    assert df.groupby('mid').size().min() >= 5
    assert df.mid.str.fullmatch('[0-9a-f]{32}').all() and df.uid.str.fullmatch('[0-9a-f]{32}').all()
    assert df.modelname.str.fullmatch(r'[a-z]+-[a-z]+-[a-z]+-\d+').all()
    assert (df.modelname.str.split('-').str[0] == df.category).all()
    pd.testing.assert_frame_equal(synthetic_likes(**kw), df)
    # grouped by model, like the crawl
    first = df.mid.ne(df.mid.shift())
    assert first.sum() == df.mid.nunique()
    # the planted structure: most of a user's likes fall in a few categories
    top = df.groupby('uid').category.agg(lambda c: c.value_counts(normalize=True).iloc[0])
    assert top[df.groupby('uid').size() >= 10].mean() > 0.5
    # skew: most users like few models, a few like many
    per_user = df.groupby('uid').size()
    assert (per_user < 5).mean() > 0.5 and per_user.max() > 20 * per_user.median()


def test_synthetic_favourite_share_zero_spreads_likes():
    df = synthetic_likes(n_users=2000, n_items=800, n_likes=20000, n_categories=8, seed=0, favourite_share=0.0)
    top = df.groupby('uid').category.agg(lambda c: c.value_counts(normalize=True).iloc[0])
    assert top[df.groupby('uid').size() >= 10].mean() < 0.45


@pytest.mark.parametrize('kw, msg', [
    (dict(n_users=10, n_items=100, n_likes=50, n_categories=4), 'too small'),
    (dict(n_users=10, n_items=10, n_likes=50, n_categories=2), 'sparse'),
    (dict(n_users=100, n_items=10, n_likes=500), 'n_categories=24 > n_items=10'),
    (dict(n_users=3, n_items=10, n_likes=30, n_categories=2), 'min_item_likes=5 > n_users=3'),
    (dict(n_users=100, n_items=50, n_likes=500, n_categories=2, favourite_share=1.5), 'favourite_share'),
])
def test_synthetic_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg): synthetic_likes(**kw)


def test_synthetic_tiny_and_dense_edge():
    df = synthetic_likes(n_users=30, n_items=20, n_likes=120, n_categories=20, seed=0)
    assert len(df) == 120 and df.uid.nunique() == 30 and df.mid.nunique() == 20
    assert not df.duplicated(['uid', 'mid']).any()


def test_synthetic_default_size_is_fast_and_sketchfab_shaped():
    t0 = time.perf_counter()
    df = synthetic_likes()
    lim = threshold_likes(df, verbose=False)
    likes, maps = build_likes(lim)
    elapsed = time.perf_counter() - t0
    s = likes_stats(lim)
    assert 14_000 <= s['users'] <= 16_500 and 24_000 <= s['models'] <= 27_000 and 0.12 <= s['sparsity'] <= 0.16
    assert likes.shape == (s['users'], s['models']) and likes.nnz == s['likes']
    assert elapsed < 30, elapsed  # a few seconds on a quiet machine; generous for shared CI


# ---------------------------------------------------------------- fetch_sketchfab against a local server

GOOD = ('modelname|mid|uid\n' + ''.join(f'model {i}|m{i % 50}|u{i}\n' for i in range(2000))).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    "Serves the `routes` of its server: path -> (status, body, extra Content-Length or None)."
    def do_GET(self):
        status, body, length = self.server.routes.get(self.path, (404, b'not found', None))
        self.server.hits.append(self.path)
        self.send_response(status)
        self.send_header('Content-Length', str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args): pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.routes, srv.hits = {}, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def no_leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(('.part', '.tmp'))] == []


def test_fetch_downloads_checks_and_caches(server, tmp_path):
    server.routes['/data/model_likes_anon.psv'] = (200, GOOD, None)
    url = server.url + '/data/model_likes_anon.psv'
    sha = hashlib.sha256(GOOD).hexdigest()
    path = fetch_sketchfab(tmp_path, url=url, min_bytes=1000, sha256=sha, show_progress=False)
    assert path == tmp_path / 'model_likes_anon.psv' and path.read_bytes() == GOOD
    assert no_leftovers(tmp_path)
    df = read_likes(path, verbose=False)
    assert len(df) == 2000 and df.columns.tolist() == LIKES_COLUMNS
    # a valid cached copy is reused without asking the server
    assert fetch_sketchfab(tmp_path, url=url, min_bytes=1000, sha256=sha, show_progress=False) == path
    assert len(server.hits) == 1
    # force downloads again
    fetch_sketchfab(tmp_path, url=url, min_bytes=1000, force=True, show_progress=False)
    assert len(server.hits) == 2


def test_fetch_reuses_cache_offline(server, tmp_path):
    server.routes['/f.psv'] = (200, GOOD, None)
    path = fetch_sketchfab(tmp_path, url=server.url + '/f.psv', min_bytes=1000, show_progress=False)
    again = fetch_sketchfab(tmp_path, url=f'http://127.0.0.1:{closed_port()}/f.psv', min_bytes=1000,
                            show_progress=False)
    assert again == path


def test_fetch_default_cache_dir_from_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv('WRMF_NB_CACHE', str(tmp_path / 'cache'))
    server.routes['/model_likes_anon.psv'] = (200, GOOD, None)
    path = fetch_sketchfab(url=server.url + '/model_likes_anon.psv', min_bytes=1000, show_progress=False)
    assert path == tmp_path / 'cache' / 'model_likes_anon.psv' and path.is_file()


def test_fetch_replaces_invalid_cached_file(server, tmp_path):
    (tmp_path / 'f.psv').write_text('<html>old error page</html>')
    server.routes['/f.psv'] = (200, GOOD, None)
    path = fetch_sketchfab(tmp_path, url=server.url + '/f.psv', min_bytes=1000, show_progress=False)
    assert path.read_bytes() == GOOD


@pytest.mark.parametrize('body, length, kw, msg, error', [
    (b'<html><body>Rate limited</body></html>' * 100, None, {}, 'not the header', ValueError),
    (GOOD[:500], None, {}, 'expected at least 1,000', ValueError),
    (GOOD[:5000], len(GOOD), {}, 'cut short', ConnectionError),  # the network's fault: retry
    (GOOD[:5000], None, {}, 'no newline', ValueError),            # cut, and no Content-Length
    (GOOD, None, dict(sha256='0' * 64), 'SHA-256', ValueError),
])
def test_fetch_refuses_bad_downloads(server, tmp_path, body, length, kw, msg, error):
    server.routes['/f.psv'] = (200, body, length)
    with pytest.raises(error, match=msg):
        fetch_sketchfab(tmp_path, url=server.url + '/f.psv', min_bytes=1000, show_progress=False, **kw)
    assert list(tmp_path.iterdir()) == []  # nothing kept, not even a temporary file


def test_fetch_refused_download_keeps_good_cache(server, tmp_path):
    server.routes['/f.psv'] = (200, GOOD, None)
    path = fetch_sketchfab(tmp_path, url=server.url + '/f.psv', min_bytes=1000, show_progress=False)
    server.routes['/f.psv'] = (200, b'garbage' * 1000, None)
    with pytest.raises(ValueError):
        fetch_sketchfab(tmp_path, url=server.url + '/f.psv', min_bytes=1000, force=True, show_progress=False)
    assert path.read_bytes() == GOOD and no_leftovers(tmp_path)


def test_fetch_http_error_is_connection_error(server, tmp_path):
    with pytest.raises(ConnectionError, match='404'):
        fetch_sketchfab(tmp_path, url=server.url + '/missing.psv', show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_fetch_offline_fails_fast_with_instructions(tmp_path):
    url = f'http://127.0.0.1:{closed_port()}/model_likes_anon.psv'
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError) as e:
        fetch_sketchfab(tmp_path / 'c', url=url, timeout=3, show_progress=False)
    assert time.perf_counter() - t0 < 3
    msg = str(e.value)
    assert url in msg and 'by hand' in msg and str(tmp_path / 'c' / 'model_likes_anon.psv') in msg
    assert list((tmp_path / 'c').iterdir()) == []


def test_fetch_timeout_is_connection_error(tmp_path):
    "A server that accepts but never answers: the timeout turns into a ConnectionError."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        url = f'http://127.0.0.1:{s.getsockname()[1]}/f.psv'
        t0 = time.perf_counter()
        with pytest.raises(ConnectionError, match='by hand'):
            fetch_sketchfab(tmp_path, url=url, timeout=0.5, show_progress=False)
        assert time.perf_counter() - t0 < 5


def test_synthetic_round_trips_through_the_file_format(tmp_path):
    df = synthetic_likes(n_users=3000, n_items=1200, n_likes=30000, n_categories=8, seed=9)
    rows = df[LIKES_COLUMNS].values.tolist()
    rows[5][0] = 'a | pipe and a \\ backslash'  # the awkward names the dialect exists for
    back = read_likes(write_psv(tmp_path / 'synthetic.psv', rows + rows[:10]), verbose=False)
    assert back.values.tolist() == rows


# ---------------------------------------------------------------- read_likes: hostile files (issue 10)

def test_read_non_utf8_is_an_error_naming_line_and_byte(tmp_path):
    "user\\xe9 and user\\xe8 must not both become 'user\\ufffd' (one user)."
    p = tmp_path / 'latin.psv'
    p.write_bytes('modelname|mid|uid\na|m1|user\xe9\nb|m1|user\xe8\n'.encode('latin-1'))
    with pytest.raises(ValueError) as e: read_likes(p, verbose=False)
    msg = str(e.value)
    assert str(p) in msg and 'line 2' in msg and '0xe9' in msg and 'offset 27' in msg
    assert 'utf-8' in msg and "encoding=" in msg and '\n' not in msg
    df = read_likes(p, verbose=False, encoding='latin-1')
    assert df.uid.tolist() == ['user\xe9', 'user\xe8']


def test_read_utf8_bom_accepted(tmp_path):
    p = tmp_path / 'bom.psv'
    p.write_bytes(b'\xef\xbb\xbfmodelname|mid|uid\na|m1|u1\n')
    assert read_likes(p, verbose=False).values.tolist() == [['a', 'm1', 'u1']]


def test_read_unknown_encoding_is_a_value_error(tmp_path):
    p = write_psv(tmp_path / 'a.psv', AWKWARD)
    with pytest.raises(ValueError, match='unknown encoding'): read_likes(p, encoding='no-such-codec')


def test_read_last_line_without_newline_is_reported(tmp_path, capsys):
    "A file cut in its last line: counted in the report and warned about, also when not verbose."
    p = tmp_path / 'cut.psv'
    p.write_bytes(b'modelname|mid|uid\na|m1|u1\nb|m2|u')
    with pytest.warns(UserWarning, match=r'line 3.*no newline'):
        df = read_likes(p)
    assert len(df) == 2
    assert 'last line has no newline (the file may be cut)' in capsys.readouterr().out
    with pytest.warns(UserWarning, match='no newline'): read_likes(p, verbose=False)
    assert capsys.readouterr().out == ''


def test_read_blank_lines_are_counted(tmp_path, capsys):
    p = tmp_path / 'blank.psv'
    p.write_bytes(b'modelname|mid|uid\n\na|m1|u1\r\n\r\n\nb|m2|u2\n')
    assert len(read_likes(p)) == 2
    assert '3 blank lines skipped' in capsys.readouterr().out


def test_read_unclosed_quote_names_the_line(tmp_path):
    "A backslash quote that never closes: the line where it opened, not `_csv.Error: field larger than field limit`."
    for n in (1, 30_000):  # short file, and one long enough to run past the csv field limit
        p = tmp_path / f'unclosed{n}.psv'
        p.write_bytes(b'modelname|mid|uid\na|m1|u1\n\\b|m2|u2\n' + b'c|m3|u3\n' * n)
        with pytest.raises(ValueError) as e: read_likes(p, verbose=False)
        assert str(p) in str(e.value) and 'line 3' in str(e.value) and 'never closed' in str(e.value)


def test_read_huge_field_then_bad_line(tmp_path):
    "A name longer than the csv field limit is fine; the bad line after it is the one reported."
    p = tmp_path / 'big.psv'
    p.write_bytes(b'modelname|mid|uid\n' + b'x' * 200_000 + b'|m1|u1\nb|m2\n')
    with pytest.raises(ValueError, match='line 3: 2 fields'): read_likes(p, verbose=False)
    limit = csv.field_size_limit()
    assert limit == 131072  # left as it was


@pytest.mark.parametrize('data, what', [
    (b'\x1f\x8b\x08\x00' + bytes(range(256)), 'gzip'),
    (b'PK\x03\x04' + bytes(range(256)), 'zip'),
    (b'\x89PNG\r\n\x1a\n\x00\x00' + bytes(range(256)), 'binary'),
    (b'modelname|mid|uid\na|m\x001|u1\n', 'binary'),
    ('modelname|mid|uid\na|m1|u1\n'.encode('utf-16'), 'UTF-16'),
])
def test_read_binary_files_one_line(tmp_path, data, what):
    p = tmp_path / 'strange.psv'
    p.write_bytes(data)
    with pytest.raises(ValueError) as e: read_likes(p, verbose=False)
    msg = str(e.value)
    assert msg.startswith(str(p)) and what in msg.replace(str(p), '') and '\n' not in msg


def test_read_folder_and_empty_file(tmp_path):
    with pytest.raises(IsADirectoryError, match='is a folder'): read_likes(tmp_path)
    p = tmp_path / 'empty.psv'
    p.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.psv.*is empty'): read_likes(p)


def test_read_header_only_and_crlf(tmp_path, capsys):
    p = tmp_path / 'h.psv'
    p.write_bytes(b'modelname|mid|uid\r\n')
    df = read_likes(p)
    assert len(df) == 0 and df.columns.tolist() == LIKES_COLUMNS
    assert 'no likes after the header' in capsys.readouterr().out
    p.write_bytes(b'modelname|mid|uid\r\na|m1|u1\r\nb|m2|u2|x\r\n')
    with pytest.raises(ValueError, match="line 3: 4 fields.*'b|m2|u2|x'"): read_likes(p)
