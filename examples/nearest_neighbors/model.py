"""The nearest-neighbours model: encode a query with the logged encoder, look it up in the logged index."""

import json
from pathlib import Path


class Model:
    def __init__(self, artifacts):
        import joblib
        import numpy as np

        encoder_dir = Path(artifacts["encoder"])  # a logged directory
        self.encoder = joblib.load(encoder_dir / "pipeline.joblib")
        config = json.loads((encoder_dir / "config.json").read_text())
        self.k, self.species = config["k"], config["species"]
        with np.load(artifacts["index"]) as index:  # a logged file
            self.embeddings, self.labels = index["embeddings"], index["labels"]

    def predict(self, data):
        """``data``: rows of 4 measurements -> per row, the k nearest flowers and the majority species."""
        import numpy as np

        answers = []
        for query in self.encoder.transform(np.asarray(data, dtype=float)):
            distances = np.linalg.norm(self.embeddings - query, axis=1)
            nearest = np.argsort(distances, kind="stable")[: self.k]
            votes = np.bincount(self.labels[nearest], minlength=len(self.species))
            answers.append(
                {
                    "species": self.species[int(votes.argmax())],
                    "neighbours": [
                        {
                            "id": int(i),
                            "species": self.species[int(self.labels[i])],
                            "distance": round(float(distances[i]), 3),
                        }
                        for i in nearest
                    ],
                }
            )
        return answers

    def model_test(self):
        assert self.predict([[5.1, 3.5, 1.4, 0.2]])[0]["species"] == "setosa"
