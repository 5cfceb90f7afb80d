"Thumbnail lookup against a local HTTP server that answers like the Sketchfab model API, and with no server."
import json, socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from wrmf_nb import thumbs as T

MODELS = {
    'm0': [{'url': 'http://img/m0-1024.jpg', 'width': 1024, 'height': 576},
           {'url': 'http://img/m0-200.jpg', 'width': 200, 'height': 200}],
    'm1': [{'url': 'http://img/m1-200.jpg', 'width': 200, 'height': 200}],
    'm2': [{'url': 'http://img/m2-640.jpg', 'width': 640, 'height': 360}],   # no 200x200 image
    'm4': [{'url': 'http://img/m4-200.jpg', 'width': 200, 'height': 200}],
}                                                                            # 'm3': 404


class Handler(BaseHTTPRequestHandler):
    hits = []
    delay = {}

    def do_GET(self):
        mid = self.path.rstrip('/').rsplit('/', 1)[-1]
        Handler.hits.append(mid)
        time.sleep(Handler.delay.get(mid, 0))
        if mid == 'broken':
            body, code = b'<html>oops</html>', 200
        elif mid in MODELS:
            body, code = json.dumps({'uid': mid, 'thumbnails': {'images': MODELS[mid]}}).encode(), 200
        else:
            body, code = json.dumps({'detail': 'Not found.'}).encode(), 404
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        try: self.wfile.write(body)
        except OSError: pass

    def log_message(self, *a): pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    Handler.hits.clear(); Handler.delay.clear()
    T.reset_offline()
    yield f'http://127.0.0.1:{srv.server_address[1]}/i/models/{{mid}}'
    srv.shutdown(); srv.server_close()
    T.reset_offline()


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv('WRMF_NB_OFFLINE', raising=False)
    monkeypatch.delenv('WRMF_NB_CACHE', raising=False)


def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    return port


# items 0..4 map to m0..m4; vectors chosen so the neighbours of item 0 are 1, 2, 3, 4 in that order
Y = np.array([[1, 0], [.99, .14], [.9, .43], [.7, .71], [.1, .99]])
model = SimpleNamespace(item_vectors=Y)
idx_to_mid = {i: f'm{i}' for i in range(5)}
names = ['Car', 'Truck', 'Bus', 'Bike', 'Tree']


def test_fetch_like_the_api(server, tmp_path):
    th = T.get_thumbnails(model, 0, idx_to_mid, N=5, names=names, base_url=server, cache_path=tmp_path)
    assert th.ids == [0, 1, 2, 3, 4]
    assert th[0] == 'http://img/m0-200.jpg' and th[1] == 'http://img/m1-200.jpg' and th[4] == 'http://img/m4-200.jpg'
    assert th[2] == T.placeholder('Bus', 'm2')       # no 200x200 thumbnail -> card
    assert th[3] == T.placeholder('Bike', 'm3')      # 404 -> card
    assert not T.is_offline(server)
    cache = json.loads((tmp_path / T.CACHE_FILE).read_text())
    assert cache == {'m0': 'http://img/m0-200.jpg', 'm1': 'http://img/m1-200.jpg', 'm2': None, 'm3': None,
                     'm4': 'http://img/m4-200.jpg'}
    # second call: everything from the cache, no request at all
    Handler.hits.clear()
    again = T.get_thumbnails(model, 0, idx_to_mid, N=5, names=names, base_url=server, cache_path=tmp_path)
    assert list(again) == list(th) and Handler.hits == []


def test_post_call_with_dense_similarity(server, tmp_path, monkeypatch):
    monkeypatch.setenv('WRMF_NB_CACHE', str(tmp_path))       # cache location from the environment
    n = np.linalg.norm(Y, axis=1)
    sim = Y @ Y.T / n[:, None] / n[None, :]
    th = T.get_thumbnails(sim, 0, idx_to_mid, N=2, base_url=server)
    assert list(th) == ['http://img/m0-200.jpg', 'http://img/m1-200.jpg']
    assert (tmp_path / T.CACHE_FILE).exists()


def test_malformed_answer_and_server_error_not_cached(server, tmp_path):
    got = T.fetch_thumbnail_urls(['broken', 'm1'], base_url=server, cache_path=tmp_path)
    assert got == {'broken': None, 'm1': 'http://img/m1-200.jpg'}
    assert 'broken' not in T.load_cache(tmp_path)


def test_no_server_placeholders_fast_and_remembered(tmp_path):
    T.reset_offline()
    url = f'http://127.0.0.1:{free_port()}/i/models/{{mid}}'
    t0 = time.monotonic()
    th = T.get_thumbnails(model, 0, idx_to_mid, N=5, names=names, base_url=url, cache_path=tmp_path, timeout=3)
    assert time.monotonic() - t0 < 3.5
    assert all(u.startswith('data:image/svg+xml;base64,') for u in th)
    assert th[0] == T.placeholder('Car', 'm0')
    assert T.is_offline(url)                        # remembered for the session...
    t0 = time.monotonic()
    T.get_thumbnails(model, 1, idx_to_mid, N=5, base_url=url, cache_path=tmp_path)
    assert time.monotonic() - t0 < 0.5
    assert T.load_cache(tmp_path) == {}             # failures are not cached
    T.reset_offline()                               # ...until reset
    assert not T.is_offline(url)


def test_time_budget_is_for_the_whole_call(server, tmp_path):
    for m in MODELS: Handler.delay[m] = 5.0          # a server far too slow for the budget
    t0 = time.monotonic()
    th = T.get_thumbnails(model, 0, idx_to_mid, N=5, base_url=server, cache_path=tmp_path, timeout=1.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.6, elapsed
    assert all(u.startswith('data:') for u in th)
    assert T.is_offline(server)
    assert Handler.hits == ['m0']                    # gave up after the first failed request


def test_offline_switches(server, tmp_path, monkeypatch):
    T.get_thumbnails(model, 0, idx_to_mid, N=2, base_url=server, cache_path=tmp_path, offline=True)
    assert Handler.hits == []
    monkeypatch.setenv('WRMF_NB_OFFLINE', '1')
    assert T.is_offline(server)
    T.get_thumbnails(model, 0, idx_to_mid, N=2, base_url=server, cache_path=tmp_path)
    assert Handler.hits == []


def test_display_thumbs_html(tmp_path):
    th = T.get_thumbnails(model, 2, idx_to_mid, N=4, names=names, cache_path=tmp_path, offline=True)
    h = T.display_thumbs(th, N=3)
    assert h.data.count('<img') == 4 and 'Input model' in h.data and 'Similar models' in h.data
    assert h.data.index('Bus') < h.data.index('Similar models')   # the input model comes first
    h2 = T.display_thumbs(['http://a/1.jpg', 'http://a/2.jpg'], N=5, names=['<b>x</b>', 'y'])
    assert h2.data.count('<img') == 2 and '&lt;b&gt;x' in h2.data


def test_bad_inputs():
    with pytest.raises(KeyError, match='not in idx_to_mid'):
        T.get_thumbnails(model, 0, {0: 'm0'}, N=3, offline=True, cache_path='/nonexistent/dir')
    with pytest.raises(ValueError, match='square'):
        T.get_thumbnails(np.zeros((5, 2)), 0, idx_to_mid, offline=True)
    with pytest.raises(IndexError, match='out of range'):
        T.get_thumbnails(model, 9, idx_to_mid, offline=True)


def test_display_without_ipython(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'IPython.display', None)     # import fails as if IPython were missing
    h = T.display_thumbs(['http://a/1.jpg', 'http://a/2.jpg'], N=1)
    assert h.data.count('<img') == 2 and h._repr_html_() == h.data


# ---------------------------------------------------------------- hostile answers (issue 10)

class Endless(BaseHTTPRequestHandler):
    "Answers every request with 200 and a body that never ends: fast (`/fast/...`) or 100 kB/s."
    served = [0]

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        chunk, pause = (b'[' * 65536, 0.0) if self.path.startswith('/fast/') else (b' ' * 1024, 0.01)
        try:
            while True:
                self.wfile.write(chunk)
                Endless.served[0] += len(chunk)
                if pause: time.sleep(pause)
        except OSError: pass

    def log_message(self, *a): pass


@pytest.fixture
def endless():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Endless)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    Endless.served[0] = 0
    T.reset_offline()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown(); srv.server_close()
    T.reset_offline()


def served_after(seconds):
    time.sleep(seconds)
    return Endless.served[0]


def test_endless_body_reader_stops_at_the_deadline(endless, tmp_path):
    "A slow endless answer: the call returns by its deadline and its reader thread stops soon after."
    t0 = time.monotonic()
    got = T.fetch_thumbnail_urls(['m0'], base_url=endless + '/slow/{mid}', cache_path=tmp_path, timeout=1.0)
    assert time.monotonic() - t0 < 1.5 and got == {'m0': None}
    a = served_after(1.5)
    assert served_after(1.0) == a, 'the abandoned reader is still reading'
    assert a < 1_000_000   # stopped by the deadline, well before the cap


def test_endless_fast_body_is_capped(endless, tmp_path, capsys):
    "A fast endless answer: reading stops at the cap (a thumbnail answer is small), said once when verbose."
    t0 = time.monotonic()
    got = T.fetch_thumbnail_urls(['m0', 'm1'], base_url=endless + '/fast/{mid}', cache_path=tmp_path,
                                 timeout=5.0, verbose=True)
    assert time.monotonic() - t0 < 3 and got == {'m0': None, 'm1': None}
    out = capsys.readouterr().out
    assert out.count('larger than') == 1 and 'MB' in out
    a = served_after(1.0)
    assert served_after(1.0) == a and a < 20_000_000
    assert T.load_cache(tmp_path) == {}   # not cached: it may be a passing fault


def test_failed_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    T.save_cache({'m0': 'http://img/m0-200.jpg'}, tmp_path)
    def boom(*a): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(T.os, 'replace', boom)
    T.save_cache({'m0': 'http://img/other.jpg'}, tmp_path)       # a full disk only costs the cache
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [T.CACHE_FILE]
    assert T.load_cache(tmp_path) == {'m0': 'http://img/m0-200.jpg'}


@pytest.mark.parametrize('text', ['{"m0": 5, "m1": ["x"], "m2": "http://img/m2-200.jpg"}', '\x00\xff garbage',
                                  '[1, 2]', '{"m0": '])
def test_corrupt_cache_is_reported_and_ignored(tmp_path, text):
    (tmp_path / T.CACHE_FILE).write_bytes(text.encode('latin-1'))
    with pytest.warns(UserWarning, match='thumbnail cache'):
        th = T.thumbnails_for([0, 1, 2], idx_to_mid, names=names, cache_path=tmp_path, offline=True)
    assert all(isinstance(u, str) for u in th)
    assert th[0] == T.placeholder('Car', 'm0') and th[1] == T.placeholder('Truck', 'm1')


# ---------------------------------------------------------------- moved out of chapter 8 (issue 12)

def test_pick_thumbnail_without_the_size():
    assert T.pick_thumbnail({'thumbnails': {'images': [{'url': 'x', 'width': 640, 'height': 360}]}}) is None
    assert T.pick_thumbnail({'detail': 'Not found.'}) is None
    assert T.pick_thumbnail({'thumbnails': {'images': None}}) is None


def test_wrap():
    assert T._wrap('Low poly police car with sirens') == ['Low poly police', 'car with sirens']
    assert T._wrap('anime-giant-wizard-91') == ['anime-giant-', 'wizard-91']
    assert T._wrap('a' * 20) == ['a' * 16, 'aaaa']
    assert len(T._wrap('word ' * 40)) == 4 and T._wrap('word ' * 40)[-1].endswith('…')


def _svg(uri):
    import base64
    assert uri.startswith('data:image/svg+xml;base64,')
    return base64.b64decode(uri.split(',', 1)[1]).decode()


def _fill(uri): return _svg(uri).split('<rect width="100%" height="100%" fill="')[1].split('"')[0]


def test_placeholder_escapes_and_is_deterministic():
    card = T.placeholder('Police car & <green> monster', mid='5dcebcfaedbc4e7e8ffd2f9cce')
    svg = _svg(card)
    assert 'Police car &amp;' in svg and '&lt;green&gt;' in svg      # any name is safe
    assert card == T.placeholder('Police car & <green> monster', mid='5dcebcfaedbc4e7e8ffd2f9cce')
    import xml.dom.minidom
    for c in (card, T.placeholder('a', 'm', 100, 'cars'), T.placeholder('a', size=50)):
        xml.dom.minidom.parseString(_svg(c))                             # well-formed SVG
    assert '&lt;cat&gt;' in _svg(T.placeholder('<x>', 'm', color_key='<cat>'))


def test_placeholder_prints_the_category_and_colours_by_it():
    a, b = T.placeholder('a', 'm1', color_key='cars'), T.placeholder('b', 'm2', color_key='cars')
    assert _fill(a) == _fill(b) and '>cars</text>' in _svg(a)
    assert _fill(T.placeholder('a', 'm1')) == _fill(T.placeholder('b', 'm2')) == T.NEUTRAL
    assert 'cars' not in _svg(T.placeholder('a', 'm1'))                # no key, no band
    assert _fill(T.placeholder('a', 'm1', color_key='cars', color='#123456')) == '#123456'


def test_category_colors_are_distinct_for_the_synthetic_categories():
    from wrmf_nb.data import _CATEGORIES
    assert len(T.PALETTE) == len(set(T.PALETTE)) == 24
    colors = T.category_colors(list(_CATEGORIES) * 3)
    assert len(colors) == 24 and len(set(colors.values())) == 24
    assert colors['anime'] != colors['science'] and colors['props'] != colors['weapons']
    assert T.category_colors(['b', 'a', None, float('nan')]) == {'a': T.PALETTE[0], 'b': T.PALETTE[1]}


def test_grid_colours_by_position_or_by_order_in_the_grid():
    cats = np.array(['b', 'a', 'c', 'a'])
    assert T._grid_colors(cats, ['a', 'c', None]) == [T.PALETTE[0], T.PALETTE[2], None]
    many = {i: f'k{i:02d}' for i in range(30)}                        # more kinds than colours
    got = T._grid_colors(many, ['k29', 'k05', 'k29'])
    assert got == [T.PALETTE[0], T.PALETTE[1], T.PALETTE[0]]
    assert T._grid_colors(None, [None, None]) == [None, None]


def test_thumbnails_for_colours_a_grid_by_category(tmp_path):
    cats = ['cars', 'cars', 'robots', 'props', 'weapons']
    th = T.thumbnails_for([0, 1, 2, 3], idx_to_mid, names=names, colors=cats,
                          cache_path=tmp_path, offline=True)
    fills = [_fill(u) for u in th]
    assert fills[0] == fills[1] and len(set(fills[1:])) == 3
    assert all(f'>{c}</text>' in _svg(u) for u, c in zip(th, cats))


def test_chapter_8_toy_catalogue(tmp_path):
    sim = model.item_vectors @ model.item_vectors.T
    th = T.get_thumbnails(sim, 0, idx_to_mid, N=3, names=names, cache_path=tmp_path, offline=True)
    assert th.ids[0] == 0 and th.names[0] == 'Car' and th[0] == T.placeholder('Car', 'm0')


def test_offline_lookup_is_immediate_and_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    T.save_cache({'known': 'https://media.example/200.jpeg'}, tmp_path)
    t0 = time.monotonic()
    got = T.fetch_thumbnail_urls(['known', 'unknown'], cache_path=tmp_path, offline=True)
    assert time.monotonic() - t0 < 0.5 and got['unknown'] is None
    monkeypatch.setenv('WRMF_NB_CACHE', '/tmp/somewhere')
    from pathlib import Path
    assert T.cache_dir() == Path('/tmp/somewhere')
