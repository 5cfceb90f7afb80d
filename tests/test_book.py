"""The book, checked the way a reader sees it: every page loaded in headless Chromium.

A small book is built from fixture notebooks (directives, math, a figure, a table, `show_doc`, links),
so the test does not depend on how long the real chapters take to run. Set WRMF_NB_BOOK_DIR to a built
site (e.g. `_docs` after `wrmf-nb book`) to check the real book too.

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`): no driver,
no port, no extra Python package. Set WRMF_NB_SCREENSHOTS=<folder> to save a screenshot of every page.
"""
import fcntl, functools, http.server, json, os, re, select, shutil, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.request
from html import unescape
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from wrmf_nb.book import build_book, external_assets, make_readme, quarto_chapters

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = next((p for p in map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome')) if p), None)
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic', '--disable-dev-shm-usage',
         '--hide-scrollbars', '--mute-audio']
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


# ---------------------------------------------------------------- a minimal DevTools client over a pipe
class Chrome:
    "Headless Chromium, spoken to with the DevTools protocol over fds 3 (commands) and 4 (replies)."
    def __init__(self, binary=CHROMIUM, timeout=60):
        self.timeout, self.events, self._buf, self._id = timeout, [], b'', 0
        self.profile = tempfile.mkdtemp(prefix='wrmf-chromium-')
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # move the child's ends above 9, then let bash map them onto fds 3 and 4 of chromium
        a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r); os.close(res_w)
        self.log = open(Path(self.profile)/'chromium.log', 'wb')
        self.proc = subprocess.Popen(
            ['/bin/bash', '-c', f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', binary, *FLAGS,
             f'--user-data-dir={self.profile}', '--remote-debugging-pipe', 'about:blank'],
            pass_fds=(a, b), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(a); os.close(b)

    def _read(self, deadline):
        while b'\0' not in self._buf:
            left = deadline - time.time()
            if left <= 0: raise TimeoutError("no answer from chromium")
            r, _, _ = select.select([self._res_r], [], [], left)
            if r:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk: raise EOFError(f"chromium exited (status {self.proc.poll()})")
                self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=None):
        self._id += 1
        msg = {'id': self._id, 'method': method, 'params': params or {}}
        if session: msg['sessionId'] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b'\0')
        deadline = time.time() + (timeout or self.timeout)
        while True:
            m = self._read(deadline)
            if m.get('id') == self._id:
                if 'error' in m: raise RuntimeError(f"{method}: {m['error']}")
                return m.get('result', {})
            self.events.append(m)

    def wait_event(self, method, session=None, timeout=None):
        deadline = time.time() + (timeout or self.timeout)
        while True:
            for i, e in enumerate(self.events):
                if e.get('method') == method and (session is None or e.get('sessionId') == session):
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def close(self):
        try: self.send('Browser.close', timeout=10)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill(); self.proc.wait(10)
        os.close(self._cmd_w); os.close(self._res_r); self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@contextmanager
def serve(folder):
    "Serve `folder` over HTTP on 127.0.0.1 (a free port) for the duration of the block."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def handle(self):
            try: super().handle()
            except (BrokenPipeError, ConnectionResetError): pass   # the browser cancelled a request
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(folder)))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/'
    finally: srv.shutdown(); srv.server_close(); t.join(10)


PAGE_JS = r"""(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => { i.loading = 'eager';
    return (i.complete && i.naturalWidth) ? 0 : new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 15000); }); }));
  const math = [...document.querySelectorAll('span.math, div.math')];
  // TeX that no math element took (e.g. a `$` pair the Markdown parser did not see) is left as raw text
  const raw = [], walk = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode()); )
    if (!n.parentElement.closest('pre, code, script, style, mjx-container, .math, .highlight, .output, textarea')
        && /\$[^$]*\\[A-Za-z]+|\\(mathbf|frac|sum|alpha|lambda|top|cdot)\b/.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 80));
  // folded cells (sphinx-togglebutton <details>) are opened: a reader who unfolds them must not scroll sideways
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const pres = [...(document.querySelector('main') || document.body).querySelectorAll('pre')];
  const overflow = pres.map((p, i) => [p, i]).filter(([p]) => p.scrollWidth > p.clientWidth + 1).map(([p, i]) => {
    const sec = p.closest('section[id]'), line = p.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
    return `pre #${i + 1} in section ${sec ? '#' + sec.id : '(top)'}: ${p.scrollWidth}px of ${p.clientWidth}px, ` +
           `longest line (${line.length} chars): ${line.trim().slice(0, 60)}`; });
  // how many characters of code a `pre` of the reading column holds
  let cols = null;
  const cp = document.querySelector('div.cell_input pre, div.highlight pre');
  if (cp) { const s = document.createElement('span'); s.textContent = 'x'.repeat(100); cp.appendChild(s);
            cols = Math.floor(100 * cp.clientWidth / s.getBoundingClientRect().width); s.remove(); }
  return JSON.stringify({
    title: document.title,
    math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    typeset: document.querySelectorAll('mjx-container').length,
    raw_tex: raw.slice(0, 5),
    math_errors: [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 10),
    images: imgs.length,
    bad_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.currentSrc || i.src).slice(0, 120)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    height: document.documentElement.scrollHeight,
    overflow: overflow,
    sidebar: [...document.querySelectorAll('.bd-sidebar-primary nav a.reference')].map(a => [a.href, a.textContent.trim()]),
    content_links: [...(document.querySelector('article') || document.body).querySelectorAll('a.reference.internal')]
                     .map(a => [a.href, a.textContent.trim()]),
    pre_columns: cols,
  });
})()"""


def _console_errors(events, session):
    errs = []
    for e in events:
        if e.get('sessionId') != session: continue
        m, p = e.get('method'), e.get('params', {})
        if m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
            errs.append('console.' + p['type'] + ': ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
        elif m == 'Runtime.exceptionThrown':
            d = p.get('exceptionDetails', {})
            errs.append('exception: ' + (d.get('exception', {}).get('description') or d.get('text', '')))
        elif m == 'Log.entryAdded' and p.get('entry', {}).get('level') == 'error':
            errs.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == 'Network.loadingFailed' and not p.get('canceled'):
            errs.append(f"network: {p.get('errorText')} (request {p.get('requestId')})")
    return errs


def check_site(site, screenshots=None):
    "Load every page of `site` in Chromium; return (per-page facts, list of problems)."
    site = Path(site)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(site).parts))
    assert pages, f"no HTML pages in {site}"
    facts, problems = {}, []
    with serve(site) as base:
        chrome = Chrome()
        try:
            target = chrome.send('Target.createTarget', {'url': 'about:blank'})['targetId']
            s = chrome.send('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
            for dom in ('Page', 'Runtime', 'Log', 'Network'): chrome.send(f'{dom}.enable', session=s)
            chrome.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': 900, 'deviceScaleFactor': 1, 'mobile': False}, session=s)
            for page in pages:
                chrome.events.clear()
                chrome.send('Page.navigate', {'url': base + page}, session=s)
                chrome.wait_event('Page.loadEventFired', session=s)
                r = chrome.send('Runtime.evaluate', {'expression': PAGE_JS, 'awaitPromise': True, 'returnByValue': True}, session=s)
                if 'exceptionDetails' in r:
                    problems.append(f"{page}: page check failed: {r['exceptionDetails']}"); continue
                f = json.loads(r['result']['value'])
                time.sleep(0.2)   # let late console messages arrive
                chrome.send('Runtime.evaluate', {'expression': '1'}, session=s)
                f['console'] = _console_errors(chrome.events, s)
                f['requests'] = [e['params']['request']['url'] for e in chrome.events
                                 if e.get('method') == 'Network.requestWillBeSent' and e.get('sessionId') == s]
                facts[page] = f
                if f['untypeset']: problems.append(f"{page}: {len(f['untypeset'])} math element(s) not typeset, e.g. {f['untypeset'][:2]}")
                if f['raw_tex']: problems.append(f"{page}: TeX left as text (math not recognised): {f['raw_tex']}")
                if f['math_errors']: problems.append(f"{page}: MathJax errors {f['math_errors']}")
                if f['bad_images']: problems.append(f"{page}: images that did not load: {f['bad_images']}")
                for o in f['overflow']: problems.append(f"{page}: code block scrolls sideways: {o}")
                if f['console']: problems.append(f"{page}: console errors: {f['console'][:5]}")
                ext = [u for u in f['requests'] if not u.startswith((base, 'data:', 'blob:', 'about:'))]
                if ext: problems.append(f"{page}: requests to other hosts: {ext[:5]}")
                if screenshots:
                    Path(screenshots).mkdir(parents=True, exist_ok=True)
                    h = min(f['height'], 16000)
                    chrome.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': h, 'deviceScaleFactor': 1, 'mobile': False}, session=s)
                    png = chrome.send('Page.captureScreenshot', {'format': 'png'}, session=s)['data']
                    import base64
                    (Path(screenshots)/(page.replace('/', '__') + '.png')).write_bytes(base64.b64decode(png))
                    chrome.send('Emulation.setDeviceMetricsOverride', {'width': 1280, 'height': 900, 'deviceScaleFactor': 1, 'mobile': False}, session=s)
        finally:
            chrome.close()
        # internal links: every same-site URL answers 200, and every #fragment exists on its page
        ids = {base + p: set(f['ids']) for p, f in facts.items()}
        checked = {}
        for page, f in facts.items():
            for href in f['links']:
                if not href.startswith(base): continue
                url, _, frag = href.partition('#')
                if url not in checked:
                    try:
                        with urllib.request.urlopen(url, timeout=30) as resp: checked[url] = resp.status
                    except urllib.error.HTTPError as e: checked[url] = e.code
                if checked[url] != 200: problems.append(f"{page}: link {href} answers {checked[url]}")
                elif frag and url in ids and frag not in ids[url] and not frag.startswith(('!', ':~:')):
                    problems.append(f"{page}: link {href}: no element with id {frag!r}")
    return facts, problems


# ---------------------------------------------------------------- a small book to build
def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == 'md' else nbformat.v4.new_code_cell(src))
    return nb

INDEX = _nb(('md', '# Tiny book\n\n> A fixture for the browser test.'),
            ('md', 'Read [the demo chapter](01_demo.ipynb), or jump to [its loss](01_demo.ipynb#a-loss). See README.md.'),
            ('code', '#| hide\nHIDDEN_MARKER = 1'),
            ('code', 'print(6 * 7)'))

DEMO = _nb(('code', '#| default_exp demo'),
           ('md', '# A demo chapter\n\n> Directives, math, a figure, a table and show_doc.'),
           ('code', '#| export\nimport numpy as np'),
           ('code', '#| hide\nfrom nbdev.showdoc import show_doc\nHIDDEN_MARKER = 2'),
           ('md', '## A loss\n\nInline math $c_{ui} = 1 + \\alpha d_{ui}$ and a display:\n\n'
                  '$$L = \\sum_{u,i} c_{ui} (p_{ui} - \\mathbf{x}_u^\\top \\mathbf{y}_i)^2 + \\lambda \\lVert X \\rVert^2$$'),
           ('code', '#| export\ndef add(a:int, # the first number\n        b:float=2.0, # the second, $b$\n       )->float: # the sum\n'
                    '    "Add `a` and `b`."\n    return a + b'),
           ('code', 'show_doc(add)'),
           ('code', 'add(1)'),
           ('code', 'wide = ' + repr('w' * 79)),   # 88 columns: fits without scrolling
           ('code', '#| eval: false\nraise RuntimeError("this cell must not run")'),
           ('code', '#| echo: false\nprint("ECHO_FALSE_OUTPUT")'),
           ('code', '#| output: false\nprint("OUTPUT_FALSE_OUTPUT")'),
           ('md', '## A figure and a table'),
           ('code', 'import matplotlib.pyplot as plt\n'
                    'fig, ax = plt.subplots(figsize=(4, 2.5))\nax.plot([1, 3, 2]); ax.set_title("a line"); plt.show()'),
           ('code', '#| export\ndef fetch(url:str="https://example.com/a/very/long/path/to/a/file.csv", # where from\n'
                    '          sha256:str|None=None, # the expected hash\n         ):\n    "Fetch `url`."\n    return url'),
           ('code', 'import sys; print("PROGRESS_ON_STDERR", file=sys.stderr); print("on stdout")'),
           ('code', 'import pandas as pd\npd.DataFrame({"factors": [40, 64], "precision@5": [0.051, 0.057]})'),
           ('md', 'Back to [the front page](index.ipynb).'))


def make_project(folder):
    folder = Path(folder)
    (folder/'nbs').mkdir(parents=True)
    (folder/'settings.ini').write_text('[DEFAULT]\nlib_name = tiny\nlib_path = tiny\nnbs_path = nbs\ndoc_path = _docs\n'
                                       'title = tiny\nauthor = test\ncopyright = 2026, test\ntst_flags = slow\n')
    (folder/'nbs'/'_quarto.yml').write_text(   # paths relative to nbs/, as in Quarto
        'project:\n  type: book\nbook:\n  title: "Tiny book"\n  chapters:\n'
        '    - index.ipynb\n    - 01_demo.ipynb\n    - 02_not_written_yet.ipynb\n')
    nbformat.write(INDEX, folder/'nbs'/'index.ipynb')
    nbformat.write(DEMO, folder/'nbs'/'01_demo.ipynb')
    return folder


@pytest.fixture(scope='module')
def tiny_book(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp('tiny'))
    res = build_book(proj, '_docs', readme='write', quiet=True)
    return proj, res


# ---------------------------------------------------------------- tests
def test_one_chapter_list():
    "nbs/_quarto.yml (what nbdev_docs gives Quarto) is the one list; the build uses it."
    assert not (ROOT/'_quarto.yml').exists(), "a second chapter list at the root"
    chapters = quarto_chapters(ROOT)
    main = [c.path.name for c in chapters if c.part is None]
    appendices = [c.path.name for c in chapters if c.part == 'Appendices']
    assert main[0] == 'index.ipynb' and main[-2:] == ['09_rec_a_sketch.ipynb', '09a_lastfm.ipynb'], main
    want = ['10_cli.ipynb', '11_book.ipynb', '12_files.ipynb', '13_checks.ipynb']
    assert appendices[:4] == want, appendices
    assert all(c.path.parent == ROOT/'nbs' for c in chapters)


def test_missing_chapter_is_an_error_when_strict(tmp_path):
    proj = make_project(tmp_path/'p')
    with pytest.raises(FileNotFoundError, match='02_not_written_yet'):
        build_book(proj, '_docs', strict=True, quiet=True)


def test_tiny_book_pages(tiny_book):
    proj, res = tiny_book
    site = res['out']
    assert site == proj/'_docs'
    assert [p.name for p in res['pages']] == ['index.html', '01_demo.html']
    assert [p.name for p in res['missing']] == ['02_not_written_yet.ipynb']
    html = (site/'01_demo.html').read_text()
    text = unescape(re.sub(r'<[^>]+>', '', html))                       # what a reader can read
    assert '#|' not in text and 'default_exp' not in text
    assert 'HIDDEN_MARKER' not in html
    assert 'tag_hide-input' in html and 'import numpy as np' in text      # exported code: shown, folded
    assert 'this cell must not run' in text                               # eval: false: shown, not run
    assert 'ECHO_FALSE_OUTPUT' in text and 'print("ECHO_FALSE_OUTPUT")' not in text
    assert 'print("OUTPUT_FALSE_OUTPUT")' in text and text.count('OUTPUT_FALSE_OUTPUT') == 1
    assert 'wrmf-showdoc' in html and 'the first number' in html and '<table' in html
    assert 'id="add"' in html and 'show_doc(add)' not in html             # a real section, not the call
    assert html.count('id="add"') == 1                                    # no automatic copy of the explicit one
    assert 'id="fetch"' in html and 'the expected hash' in html           # documented without a show_doc cell
    cells = [unescape(re.sub(r'<[^>]+>', '', c)) for c in re.findall(r'<td>(.*?)</td>', html, re.S)]
    assert 'str | None' in cells, cells                                   # one cell, not split at the `|`
    assert 'file.csv' not in re.sub(r'<pre>.*?</pre>', '', html, flags=re.S)   # long default cut in the table
    assert 'Show code: fetch' in html and 'Show code: imports' in html     # what a folded cell holds
    assert text.count('PROGRESS_ON_STDERR') == 1 and 'on stdout' in text  # in the code, not the output
    assert '<h1>0. A demo chapter' in html                                 # numbered (from 0) as in the sidebar
    assert 'class="dataframe' in html                                     # the pandas table
    assert re.search(r'<img [^>]*src="_images/[^"]+\.png"', html)         # the figure
    assert (site/'_static'/'mathjax'/'tex-chtml.js').is_file() and '_static/mathjax/tex-chtml.js' in html
    assert external_assets(site) == []
    assert 'http://README.md' not in (site/'index.html').read_text()       # a file name, not a web address


def test_readme_check(tiny_book):
    proj, _ = tiny_book
    readme = proj/'README.md'
    text = readme.read_text()
    assert text.startswith('<!-- Generated from nbs/index.ipynb')
    assert '[the demo chapter](nbs/01_demo.ipynb)' in text and 'HIDDEN_MARKER' not in text
    assert '```python\nprint(6 * 7)\n```\n\n```\n42\n```' in text
    assert make_readme(proj, check=True, quiet=True)
    readme.write_text(text + 'edited by hand\n')
    assert not make_readme(proj, check=True, quiet=True)
    assert make_readme(proj, quiet=True) and readme.read_text() == text


@needs_chromium
def test_tiny_book_in_browser(tiny_book):
    facts, problems = check_site(tiny_book[1]['out'], os.environ.get('WRMF_NB_SCREENSHOTS'))
    assert not problems, '\n'.join(problems)
    demo = facts['01_demo.html']
    assert demo['math'] >= 3 and demo['typeset'] >= demo['math']        # two inline, one display, one in show_doc
    assert demo['images'] >= 1
    assert demo['pre_columns'] >= 88, demo['pre_columns']               # an 88-column line fits
    assert {'index.html', '01_demo.html', 'genindex.html', 'search.html'} <= set(facts)


def chapter_names(text):
    "A sidebar entry without its number: '3. ALS' -> 'ALS', 'Appendix A: The CLI' -> 'The CLI'."
    return re.sub(r'^(\d+\.\s+|Appendix [A-Z]:\s+)', '', ' '.join(text.split()))


def chapter_name_mismatches(facts):
    """Links that disagree with the sidebar: a front-page link to a chapter whose text is not the chapter's
    name there, or (on any page) a 'chapter N' / 'appendix X' link to a page the sidebar numbers otherwise."""
    index = facts.get('index.html', {})
    raw = {href.partition('#')[0].rsplit('/', 1)[-1]: ' '.join(t.split()) for href, t in index.get('sidebar', [])}
    number = {pg: (m.group(1) or m.group(2)) if (m := re.match(r'^(?:(\d+)\.|Appendix ([A-Z]):)\s', t)) else None
              for pg, t in raw.items()}
    bad = []
    for page, f in sorted(facts.items()):
        for href, text in f.get('content_links', []):
            url, _, frag = href.partition('#')
            target, text = url.rsplit('/', 1)[-1], ' '.join(text.split())
            if target not in raw or target == 'index.html': continue
            ref = re.fullmatch(r'(?:chapter|appendix|ch\.)\s+(\w+)', text, re.I)
            if ref:
                if ref.group(1).upper() != (number[target] or '').upper():
                    bad.append(f"{page}: {text!r} links to {target}, which the sidebar calls {raw[target]!r}")
            elif page == 'index.html' and not frag and text != chapter_names(raw[target]):
                bad.append(f"index.html names {target} {text!r}; the sidebar says {raw[target]!r}")
    return sorted(set(bad))


@needs_chromium
@pytest.mark.skipif(not os.environ.get('WRMF_NB_BOOK_DIR'), reason="set WRMF_NB_BOOK_DIR to a built book (e.g. _docs) to check it")
def test_built_book_in_browser():
    """Every page of the built book: math, images, links, no console errors, no code block that
    scrolls sideways, and chapter names and numbers that agree with the sidebar."""
    site = Path(os.environ['WRMF_NB_BOOK_DIR'])
    facts, problems = check_site(site, os.environ.get('WRMF_NB_SCREENSHOTS'))
    assert 'index.html' in facts
    problems += chapter_name_mismatches(facts)
    assert not problems, f"{len(problems)} problem(s):\n" + '\n'.join(problems)
    print(f"{len(facts)} pages checked; {sum(f['typeset'] for f in facts.values())} formulas, "
          f"{sum(f['images'] for f in facts.values())} images")


if __name__ == '__main__':   # python tests/test_book.py SITE [SCREENSHOT_DIR]: check a built site by hand
    facts, problems = check_site(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    for p, f in facts.items(): print(f"{p}: math {f['typeset']}/{f['math']}, images {f['images']}, links {len(f['links'])}")
    print('\n'.join(problems) or 'no problems')
