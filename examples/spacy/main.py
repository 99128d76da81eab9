"""spaCy: train a text classifier on a blank English pipeline, log it (nlp.to_disk, a directory), load it
back as the server does (spacy.load) and classify texts.

Run from anywhere:  python examples/spacy/main.py
"""

import json

import spacy
from spacy.training import Example

import vci

TRAIN = [
    ("a good movie", "POS"),
    ("great film", "POS"),
    ("good and great", "POS"),
    ("a bad movie", "NEG"),
    ("awful film", "NEG"),
    ("bad and awful", "NEG"),
]


def trained_classifier():
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat")
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {"POS": float(y == "POS"), "NEG": float(y == "NEG")}})
        for text, y in TRAIN
    ]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(20):
        nlp.update(examples, sgd=optimizer)
    return nlp


def main() -> dict:
    nlp = trained_classifier()
    run = vci.init(project="spacy-example")
    run.log_model(nlp)  # nlp.to_disk directory; spacy pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    texts = ["good film", "an awful movie"]
    cats = model.predict(texts)  # one {label: score} per text
    expected = [doc.cats for doc in nlp.pipe(texts)]
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [max(c, key=c.get) for c in cats],
        "same_as_original": all(
            c.keys() == e.keys() and all(abs(c[k] - e[k]) < 1e-6 for k in c)
            for c, e in zip(cats, expected, strict=True)
        ),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
