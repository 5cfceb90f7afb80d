"A local HTTP server on 127.0.0.1 for the download tests: routes map a path to `route(handler)`."
import http.server, threading, time
from contextlib import contextmanager


def send(handler, body, length=None, pause=0.0, step=None):
    "Answer 200 with `body` (Content-Length `length`, 'none' for no header), `step` bytes every `pause` s."
    handler.send_response(200)
    if length != 'none': handler.send_header('Content-Length', str(len(body) if length is None else length))
    handler.end_headers()
    step = step or len(body) or 1
    try:
        for i in range(0, len(body), step):
            handler.wfile.write(body[i:i + step]); handler.wfile.flush()
            handler.server.served += len(body[i:i + step])
            if pause: time.sleep(pause)
    except OSError: pass  # the client hung up


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None: self.send_error(404); return
        route(self)
        self.close_connection = True

    def log_message(self, *args): pass


@contextmanager
def local_server(routes:dict):
    "A threaded server answering `routes`; `.url`, `.hits` (paths asked) and `.served` (bytes sent)."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads, srv.routes, srv.hits, srv.served = True, routes, [], 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
    try: yield srv
    finally: srv.shutdown(); srv.server_close()
