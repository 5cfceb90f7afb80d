"Crash-safe writes (wrmf_nb._files): dead temporaries of killed writers are cleaned up, live ones never."
import fcntl, os

import numpy as np
import pytest
import scipy.sparse as sp

from wrmf_nb import _files
from wrmf_nb._files import atomic_write, atomic_folder
from wrmf_nb.als import ALS

needs_proc = pytest.mark.skipif(not os.path.isdir('/proc/self/fd') or _files.fcntl is None,
                                reason='needs POSIX locks and /proc')


def small_model():
    R = sp.random(10, 8, density=0.3, random_state=22, format='csr')
    R.data = np.ceil(R.data * 3)
    return ALS(num_factors=2, iterations=1, random_state=0).fit(R)


def test_save_removes_only_its_own_dead_temp_files(tmp_path):
    m = small_model()
    dead = tmp_path / '.m.npz.dead1.tmp'; dead.write_bytes(b'PK half a model')
    empty = tmp_path / '.m.npz.dead2.tmp'; empty.write_bytes(b'')        # killed before its first write
    live = tmp_path / '.m.npz.live1.tmp'; live.write_bytes(b'PK a save in progress')
    other = tmp_path / '.n.npz.dead3.tmp'; other.write_bytes(b'PK another target')
    mine = tmp_path / 'm.npz.tmp'; mine.write_bytes(b'a user file')
    with open(live, 'rb') as held:
        fcntl.flock(held, fcntl.LOCK_EX)                               # its writer is alive
        m.save(tmp_path / 'm.npz')
    assert not dead.exists() and not empty.exists()
    assert live.exists() and other.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.m.npz.live1.tmp', '.n.npz.dead3.tmp', 'm.npz', 'm.npz.tmp']


@needs_proc
def test_temp_file_removed_before_it_is_locked_starts_again(tmp_path, monkeypatch):
    "Another writer's cleanup may remove a temp file in the instant between its creation and its lock."
    m = small_model()
    real, lost = _files.fcntl.flock, []
    def flock(fd, op):
        if not lost:                                   # the first temp file vanishes just before it is locked
            lost.append(os.readlink(f'/proc/self/fd/{fd}')); os.unlink(lost[0])
        return real(fd, op)
    monkeypatch.setattr(_files.fcntl, 'flock', flock)
    path = m.save(tmp_path / 'm.npz')
    monkeypatch.setattr(_files.fcntl, 'flock', real)
    assert lost and not os.path.exists(lost[0])
    np.testing.assert_array_equal(ALS.load(path).user_vectors, m.user_vectors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.npz']


def test_dead_folder_of_a_killed_swap_is_removed_live_one_kept(tmp_path):
    target = tmp_path / 'model'
    dead = tmp_path / '.model.abc.new'; dead.mkdir(); (dead / 'model.npz').write_bytes(b'PK half')
    live = tmp_path / '.model.xyz.new'; live.mkdir()
    held = os.open(live, os.O_RDONLY); fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with atomic_folder(target) as new: (new / 'a').write_text('1')
    finally: os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.model.xyz.new', 'model']
    stale = tmp_path / '.model.old'; stale.mkdir()                    # killed after the swap, before clean-up
    with atomic_folder(target) as new: (new / 'a').write_text('2')
    assert not stale.exists() and (target / 'a').read_text() == '2'


def test_atomic_write_text_mode_and_bad_mode(tmp_path):
    with atomic_write(tmp_path / 't.txt', 'w') as f: f.write('é')
    assert (tmp_path / 't.txt').read_bytes() == 'é'.encode()
    with pytest.raises(ValueError, match="has no 'w'"):
        with atomic_write(tmp_path / 't.txt', 'rb'): pass
