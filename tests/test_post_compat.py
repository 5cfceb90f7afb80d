"""The blog post's workflow, run against wrmf_nb with only the import changed.

The post trains `implicit.ALS()` from its fork of implicit. Here the same sequence of calls (threshold, id
maps, likes matrix, split, a grid search with learning curves, picking the best run, refitting on all the
likes, item similarities and thumbnails) runs with `import wrmf_nb.als as implicit`, on a small synthetic
file written in the post's format, so every call, attribute and return shape the post relies on is pinned.
"""
import copy, csv, itertools
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse

import wrmf_nb.als as implicit                       # the only change: `import implicit` in the post
from wrmf_nb.data import synthetic_likes, threshold_likes, id_maps, likes_matrix
from wrmf_nb.split import train_test_split
from wrmf_nb.metrics import calculate_mse, precision_at_k
from wrmf_nb.search import print_log, learning_curve, grid_search_learning_curve
from wrmf_nb.thumbs import get_thumbnails, display_thumbs


@pytest.fixture(scope='module')
def psv(tmp_path_factory):
    "A small likes file in the post's pipe-separated format."
    path = tmp_path_factory.mktemp('post') / 'model_likes_anon.psv'
    df = synthetic_likes(n_users=1500, n_items=400, n_likes=20_000, seed=7)
    df[['modelname', 'mid', 'uid']].to_csv(path, sep='|', index=False, quoting=csv.QUOTE_MINIMAL, escapechar='\\')
    return path


@pytest.mark.filterwarnings('ignore:The inplace keyword')
def test_post_workflow(psv, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv('WRMF_NB_CACHE', str(tmp_path))
    # Massaging the data: the post reads with pandas and these exact options.
    df = pd.read_csv(psv, sep='|', quoting=csv.QUOTE_MINIMAL, quotechar='\\')
    df.drop_duplicates(inplace=True)
    df = df[['uid', 'mid']]
    df_lim = threshold_likes(df, 5, 5)
    mid_to_idx, idx_to_mid, uid_to_idx, idx_to_uid = id_maps(df_lim)
    assert [idx_to_mid[mid_to_idx[m]] for m in df_lim.mid.unique()[:5]] == list(df_lim.mid.unique()[:5])
    likes = likes_matrix(df_lim, uid_to_idx, mid_to_idx)
    assert likes.shape == (len(uid_to_idx), len(mid_to_idx)) and likes.nnz == len(df_lim)

    # Splitsville.
    train, test, user_index = train_test_split(likes, 5, fraction=0.2, seed=0)
    assert train.multiply(test).nnz == 0 and len(user_index) == int(np.floor(0.2 * likes.shape[0]))

    # The grid search, with the post's parameter names and a smaller grid.
    param_grid = {'num_factors': [4, 8], 'regularization': [0.0, 0.1], 'alpha': [1, 50]}
    base_model = implicit.ALS()
    epochs = range(2, 8, 2)
    curves = grid_search_learning_curve(base_model, train, test, param_grid, user_index=user_index,
                                        patk=5, epochs=epochs)
    out = capsys.readouterr().out
    assert 'p@k train' in out and 'mse test' in out and '+====' in out
    assert len(curves) == 8
    assert {'params', 'patk', 'mse'} <= set(curves[0])
    assert len(curves[0]['patk']['test']) == len(epochs)
    assert not hasattr(base_model, 'user_vectors')     # the grid works on deep copies

    # Picking the best run, exactly as the post does.
    best_curves = sorted(curves, key=lambda x: max(x['patk']['test']), reverse=True)
    max_score = max(best_curves[0]['patk']['test'])
    iterations = epochs[best_curves[0]['patk']['test'].index(max_score)]
    params = best_curves[0]['params']
    params['iterations'] = iterations
    bestALS = implicit.ALS(**params)
    bestALS.fit(likes)
    assert bestALS.user_vectors.shape == (likes.shape[0], params['num_factors'])

    # Item-to-item similarities and thumbnails (offline here: placeholders, quickly).
    item_similarities = bestALS.predict_for_items()
    assert item_similarities.shape == (likes.shape[1],) * 2
    np.testing.assert_allclose(np.diagonal(item_similarities), 1, atol=1e-4)
    thumbs = get_thumbnails(item_similarities, 0, idx_to_mid, base_url='http://127.0.0.1:9/i/models/{mid}')
    assert len(thumbs) == 10
    display_thumbs(thumbs)


def test_post_learning_curve_driving(capsys):
    "The post's learning_curve drives the model through setattr, hasattr, fit and fit_partial."
    likes = sparse.random(300, 120, density=0.08, random_state=1, format='csr'); likes.data[:] = 1
    train, test, user_index = train_test_split(likes, 2, fraction=0.3, seed=1)
    model = copy.deepcopy(implicit.ALS())
    for k, v in {'num_factors': 6, 'regularization': 0.1, 'alpha': 10}.items(): setattr(model, k, v)
    model, train_p, train_mse, test_p, test_mse = learning_curve(model, train, test, [1, 3, 4], k=5,
                                                                 user_index=user_index)
    assert len(train_p) == len(test_mse) == 3
    # precision_at_k and calculate_mse agree with the numbers in the curve
    assert test_p[-1] == pytest.approx(precision_at_k(model, test, 5, user_index))
    assert test_mse[-1] == pytest.approx(calculate_mse(model, test, user_index))
    preds = model.predict_for_customers()                 # the post's dense predictions
    assert preds.shape == likes.shape
    print_log(['epochs', 'p@k'], header=True)
    assert '+============+' in capsys.readouterr().out
