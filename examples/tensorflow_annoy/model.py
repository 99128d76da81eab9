"""The model the documentation leads with: __init__ loads a TensorFlow SavedModel and an annoy index, predict
embeds each query with the first and looks its nearest neighbours up in the second."""

DIMENSIONS = 3  # the embedding's width: the annoy index is built over vectors of this length
NEIGHBOURS = 3


class Model:
    def __init__(self, artifacts):
        import tensorflow as tf
        from annoy import AnnoyIndex

        self.encoder = tf.saved_model.load(artifacts["tensorflow_saved_model"])  # a logged directory
        self.index = AnnoyIndex(DIMENSIONS, "euclidean")
        self.index.load(artifacts["nearest_neighbor_index"])  # a logged file, memory-mapped

    def predict(self, data):
        """``data``: rows of 4 numbers -> per row, the ids of the nearest training points and their distances."""
        import tensorflow as tf

        embeddings = self.encoder.embed(tf.constant(data, dtype=tf.float32)).numpy()
        every_node = self.index.get_n_items() * self.index.get_n_trees()  # exhaustive: exact on a small index
        answers = []
        for vector in embeddings:
            ids, distances = self.index.get_nns_by_vector(
                vector.tolist(), NEIGHBOURS, search_k=every_node, include_distances=True
            )
            answers.append({"nearest": ids, "distances": [round(d, 3) for d in distances]})
        return answers
