"""Writes the format fixtures in this folder. Run it ONLY when adding a new format version
(then keep the old files: tests/test_io.py checks that every fixture still loads).

    python tests/data/make_fixtures.py

model_v1.fmlp          a compiled Sequential with every layer type of format version 1 and
                       Adam state after two epochs
mlpclassifier_v1.fmlp  a fastmlp.sklearn.MLPClassifier with string class labels
fixtures_v1_expected.npz   inputs X and the predictions each file gave when it was written
"""
import os

import numpy as np

import fastmlp as fm

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(1234)
    X = rng.normal(size=(64, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    model = fm.Sequential(
        [fm.Dense(12, activation="relu", l2=1e-4, max_norm=3.0), fm.Dropout(0.1),
         fm.GaussianNoise(0.05), fm.PReLU(0.2), fm.Maxout(6, pieces=3),
         fm.Activation("elu", 0.5), fm.ActivityRegularization(l1=1e-4), fm.Sigmoid(T=2.0),
         fm.Dense(3)],
        input_dim=5, dtype="float32", seed=7)
    model.compile("softmax_cross_entropy", fm.Adam(lr=0.01))
    model.fit(X, y, epochs=2, batch_size=16)
    model.save(os.path.join(HERE, "model_v1.fmlp"), metadata={"purpose": "format v1 fixture"})

    from fastmlp.sklearn import MLPClassifier
    labels = np.array(["low", "mid", "high"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dropout=0.1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, labels)
    fm.save(clf, os.path.join(HERE, "mlpclassifier_v1.fmlp"))

    np.savez(os.path.join(HERE, "fixtures_v1_expected.npz"), X=X,
             model_predict=model.predict(X), clf_proba=clf.predict_proba(X),
             clf_predict=clf.predict(X))


if __name__ == "__main__":
    main()
