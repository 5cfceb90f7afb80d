"Fixtures shared by several test modules."
import pytest

from wrmf_nb.data import likes_matrix, synthetic_likes, threshold_likes
from wrmf_nb.split import train_test_split


@pytest.fixture(scope='module')
def data():
    "The search tests' small likes, split the post's way: (train, test, test users)."
    likes = likes_matrix(threshold_likes(synthetic_likes(n_users=2500, n_items=1200, n_likes=25_000, seed=7),
                                         5, 5, verbose=False))
    return train_test_split(likes, 5, fraction=0.2, seed=0)
