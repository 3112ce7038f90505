"""Softmax regression on scikit-learn's bundled digits, beside LogisticRegression.

    python examples/digits.py
"""
import time

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from csoftmax import SoftmaxRegression

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

C = 1.0  # LogisticRegression's C is l2 = 1 / (C n) on our mean loss
l2 = 1.0 / (C * len(y_train))
models = {
    "csoftmax SoftmaxRegression(lbfgs)": SoftmaxRegression(solver="lbfgs", l2=l2),
    "csoftmax SoftmaxRegression(gd)": SoftmaxRegression(solver="gd", l2=l2),
    "sklearn LogisticRegression(lbfgs)": LogisticRegression(C=C),
}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(f"{name:34s} test accuracy {model.score(X_test, y_test):.4f}   fit {1e3 * seconds:6.1f} ms")
