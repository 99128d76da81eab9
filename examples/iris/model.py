"""The iris example model: a scikit-learn classifier loaded from a logged artifact."""


class Model:
    LABELS = ["setosa", "versicolor", "virginica"]

    def __init__(self, artifacts):
        import joblib  # ships with scikit-learn

        self.clf = joblib.load(artifacts["weights"])

    def predict(self, data):
        """``data``: a list of rows of 4 measurements -> a list of species names."""
        return [self.LABELS[i] for i in self.clf.predict(data)]

    def model_test(self):
        assert self.predict([[5.1, 3.5, 1.4, 0.2]]) == ["setosa"]
