"""What a plain install gives: every module imports without the dev/book extras, and the
saved grid results travel with the package (found from any directory, never silently
replaced by a small grid).

The install test puts a real, non-editable `pip install --no-deps` of this checkout in
a temporary folder and runs Python from `/` with the dev-only packages made
unimportable, so it checks the files a wheel ships and the imports a plain install can
satisfy. (.ci/run does the same in a fresh venv, dependencies included.)
"""
import os, subprocess, sys, textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY = ['nbformat', 'yaml', 'nbclient', 'nbconvert', 'jupyter_book', 'nbdev',
            'execnb', 'fastcore', 'pytest', 'dask', 'distributed', 'sphinx', 'myst_nb']

BLOCK = textwrap.dedent(f"""
    import importlib.abc, sys
    class _NoDev(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {DEV_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, _NoDev())
""")

def _py(code, pythonpath=None, cwd='/', timeout=120):
    "Run `code` from `cwd` with the dev-only packages blocked."
    path = pythonpath or os.environ.get('PYTHONPATH', str(ROOT))
    cmd = [sys.executable, '-c', BLOCK + textwrap.dedent(code)]
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, 'PYTHONPATH': path},
                          capture_output=True, text=True, timeout=timeout)

def test_grid_results_from_any_directory():
    r = _py("""
        from wrmf_nb.search import load_grid_results
        curves, meta = load_grid_results()
        print(len(curves), meta['source'])
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith('180 saved results'), r.stdout

def test_missing_grid_results_is_an_error(tmp_path):
    from wrmf_nb.search import load_grid_results
    with pytest.raises(FileNotFoundError, match='bench_grid'):
        load_grid_results(tmp_path/'nope.json')

def test_fallback_is_explicit_and_says_so(tmp_path, capsys, monkeypatch):
    import wrmf_nb.search as s
    small = lambda: ([{'params': {}}], {'source': 'small grid'})
    monkeypatch.setattr(s, 'small_grid_results', small)
    curves, meta = s.load_grid_results(tmp_path/'nope.json', fallback=True)
    assert len(curves) == 1 and 'not found' in capsys.readouterr().out

@pytest.fixture(scope='module')
def plain_install(tmp_path_factory):
    "A non-editable install of this checkout (its dependencies: the test's venv)."
    target = tmp_path_factory.mktemp('plain')
    cmd = [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
           '--no-build-isolation', '--target', str(target), str(ROOT)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path_factory.mktemp('build'))
    assert r.returncode == 0, r.stderr
    return target

def test_plain_install_imports_every_module(plain_install):
    r = _py("""
        import importlib, pkgutil, wrmf_nb
        assert '/plain' in wrmf_nb.__file__, wrmf_nb.__file__     # the installed copy
        mods = [m.name for m in pkgutil.iter_modules(wrmf_nb.__path__)]
        for m in mods: importlib.import_module('wrmf_nb.' + m)
        from wrmf_nb.search import load_grid_results
        print(len(mods), len(load_grid_results()[0]))
    """, pythonpath=str(plain_install))
    assert r.returncode == 0, r.stderr
    n_mods, n_curves = map(int, r.stdout.split()[-2:])
    assert n_mods >= 10 and n_curves == 180, r.stdout

def test_book_without_its_extra_says_how_to_install(plain_install):
    r = _py("""
        import sys
        from wrmf_nb.cli import main
        sys.exit(main(['book', '--check-readme']))
    """, pythonpath=str(plain_install))
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('wrmf-nb'), r.stderr
    assert 'wrmf_nb[book]' in err[0] and 'nbformat' in err[0], r.stderr
