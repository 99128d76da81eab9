"""statsmodels: fit a formula OLS, log the fitted results itself, load it back as the server does, predict
from named columns.

Run from anywhere:  python examples/statsmodels/main.py
"""

import json

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import vci


def main() -> dict:
    x = np.linspace(0, 10, 21)
    noise = np.tile([0.05, -0.05], 11)[:21]
    results = smf.ols("y ~ x", data=pd.DataFrame({"x": x, "y": 1 + 2 * x + noise})).fit()
    run = vci.init(project="statsmodels-example")
    run.log_model(results)  # results.save(); statsmodels, pandas, numpy, scipy pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    got = model.predict({"x": [0.0, 20.0]})
    original = results.predict(pd.DataFrame({"x": [0.0, 20.0]})).tolist()
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [round(v, 2) for v in got],
        "same_as_original": got == original,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
