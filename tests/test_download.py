"`wrmf_nb.data.download` against a local HTTP server: deadlines, stalls, cut bodies, checks, atomic results."
import hashlib, os, socket, time
from pathlib import Path

import pytest

from wrmf_nb.data import download, fetch_sketchfab

from http_fixture import local_server, send

BODY = bytes(range(256)) * 40  # 10,240 bytes


ROUTES = {
    '/good': lambda h: send(h, BODY),
    '/nolength': lambda h: send(h, BODY, length='none'),
    '/short': lambda h: send(h, BODY[:4000], length=len(BODY)),        # closes early
    '/trickle': lambda h: send(h, BODY, pause=0.01, step=1),            # 100 B/s
    '/stall': lambda h: send(h, BODY[:100] + b'x' * 10, pause=20, step=100),  # 100 bytes, then silence
    '/huge': lambda h: send(h, BODY, length=10 ** 12),
    '/slowheaders': lambda h: slow_headers(h),
}


def slow_headers(handler):
    "A status line, then one header line every 0.2 s, never the body."
    try:
        handler.wfile.write(b'HTTP/1.0 200 OK\r\n')
        for i in range(200):
            handler.wfile.write(f'X-Slow-{i}: yes\r\n'.encode()); handler.wfile.flush()
            time.sleep(0.2)
    except OSError: pass


@pytest.fixture
def server():
    with local_server(ROUTES) as srv: yield srv


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_good_download_is_cached_atomically(server, tmp_path):
    dest = tmp_path / 'sub' / 'f.bin'
    got = download(server.url + '/good', dest, sha256=hashlib.sha256(BODY).hexdigest(),
                   expected_bytes=len(BODY), show_progress=False)
    assert got == dest and dest.read_bytes() == BODY and leftovers(dest.parent) == ['f.bin']


def test_trickle_fails_by_the_deadline(server, tmp_path):
    "100 B/s is never a stall, so only a deadline for the whole download ends it."
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match='deadline'):
        download(server.url + '/trickle', tmp_path / 'f.bin', timeout=5, deadline=1, show_progress=False)
    assert time.monotonic() - t0 < 2.5
    assert leftovers(tmp_path) == []


def test_fetch_sketchfab_has_a_deadline(server, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        fetch_sketchfab(tmp_path, url=server.url + '/trickle', timeout=5, deadline=1, show_progress=False)
    assert time.monotonic() - t0 < 2.5 and leftovers(tmp_path) == []


def test_stall_fails_after_timeout(server, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match='no data'):
        download(server.url + '/stall', tmp_path / 'f.bin', timeout=0.5, show_progress=False)
    assert time.monotonic() - t0 < 2 and leftovers(tmp_path) == []


def test_short_body_with_content_length_refused(server, tmp_path):
    with pytest.raises(ConnectionError, match='cut short.*4,000 of 10,240'):
        download(server.url + '/short', tmp_path / 'f.bin', show_progress=False)
    assert leftovers(tmp_path) == []


def test_no_content_length_size_or_checksum_decides(server, tmp_path):
    with pytest.raises(ValueError, match='10,240 bytes, expected 20,000'):
        download(server.url + '/nolength', tmp_path / 'f.bin', expected_bytes=20_000, show_progress=False)
    with pytest.raises(ValueError, match='SHA-256'):
        download(server.url + '/nolength', tmp_path / 'f.bin', sha256='0' * 64, show_progress=False)
    with pytest.raises(ValueError, match='not the file'):
        download(server.url + '/nolength', tmp_path / 'f.bin', show_progress=False,
                 check=lambda p: 'not the file' if p.stat().st_size < 20_000 else None)
    assert leftovers(tmp_path) == []
    download(server.url + '/nolength', tmp_path / 'f.bin', expected_bytes=len(BODY), show_progress=False)
    assert (tmp_path / 'f.bin').read_bytes() == BODY


def test_refused_download_keeps_the_good_file(server, tmp_path):
    dest = tmp_path / 'f.bin'
    dest.write_bytes(b'the last good copy')
    with pytest.raises(ConnectionError):
        download(server.url + '/short', dest, show_progress=False)
    assert dest.read_bytes() == b'the last good copy' and leftovers(tmp_path) == ['f.bin']


def test_max_bytes_refuses_before_downloading(server, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match='larger than'):
        download(server.url + '/huge', tmp_path / 'f.bin', max_bytes=10 ** 6, show_progress=False)
    with pytest.raises(ValueError, match='larger than'):
        download(server.url + '/nolength', tmp_path / 'f.bin', max_bytes=1000, show_progress=False)
    assert time.monotonic() - t0 < 2 and leftovers(tmp_path) == []


def test_interrupt_removes_the_partial_file(server, tmp_path):
    def interrupt(path): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        download(server.url + '/good', tmp_path / 'f.bin', check=interrupt, show_progress=False)
    assert leftovers(tmp_path) == []


def test_dead_temp_files_are_removed(server, tmp_path):
    "A temporary left by a process killed with SIGKILL (unlocked) goes with the next download; a live one stays."
    import fcntl
    stale, live = tmp_path / '.f.bin.dead.tmp', tmp_path / '.f.bin.live.tmp'
    stale.write_bytes(b'x'); live.write_bytes(b'y')
    with open(live, 'rb') as held:
        fcntl.flock(held, fcntl.LOCK_EX)                       # its writer is alive
        download(server.url + '/good', tmp_path / 'f.bin', show_progress=False)
    assert leftovers(tmp_path) == ['.f.bin.live.tmp', 'f.bin']


def test_nothing_listening_is_a_fast_connection_error(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as e:
        download(f'http://127.0.0.1:{port}/f.bin', tmp_path / 'f.bin', show_progress=False,
                 how='run `wrmf-nb fetch-sketchfab` again when online')
    assert time.monotonic() - t0 < 2 and leftovers(tmp_path) == []
    msg = str(e.value)
    assert '\n' not in msg and f'127.0.0.1:{port}' in msg and msg.endswith('when online')


def test_http_error_and_unwritable_folder(server, tmp_path):
    with pytest.raises(ConnectionError, match='HTTP 404'):
        download(server.url + '/missing', tmp_path / 'f.bin', show_progress=False)
    (tmp_path / 'file').write_text('not a folder')
    with pytest.raises(NotADirectoryError):
        download(server.url + '/good', tmp_path / 'file' / 'f.bin', show_progress=False)
    assert server.hits == ['/missing']  # checked before connecting


@pytest.mark.parametrize('kw', [dict(timeout=0), dict(timeout=-1), dict(timeout=float('nan')),
                                dict(deadline=0)])
def test_bad_clock_values_are_value_errors(tmp_path, kw):
    with pytest.raises(ValueError, match='positive number of seconds'):
        download('http://127.0.0.1:9/f.bin', tmp_path / 'f.bin', show_progress=False, **kw)


def test_slow_headers_obey_the_deadline(server, tmp_path):
    "Headers trickling in (each within the stall timeout) cannot outlast the deadline either."
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match='by the deadline'):
        download(server.url + '/slowheaders', tmp_path / 'f.bin', timeout=5, deadline=1,
                 show_progress=False)
    assert time.monotonic() - t0 < 1.5 and leftovers(tmp_path) == []
