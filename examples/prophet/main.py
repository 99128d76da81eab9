"""Prophet: fit a daily forecaster (Prophet's bundled Stan model: nothing is compiled), log it
(model_to_json), load it back as the server does and forecast the next days.

Run from anywhere:  python examples/prophet/main.py
"""

import json
import logging

import numpy as np
import pandas as pd
from prophet import Prophet

import vci


def main() -> dict:
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    t = np.arange(56)
    history = pd.DataFrame(
        {"ds": pd.date_range("2024-01-01", periods=56, freq="D"), "y": 10 + 0.3 * t + 2 * np.sin(2 * np.pi * t / 7)}
    )
    forecaster = Prophet(yearly_seasonality=False, daily_seasonality=False).fit(history)
    run = vci.init(project="prophet-example")
    run.log_model(forecaster)  # prophet.json (model_to_json); the history's frequency kept in model.json
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    forecast = model.predict(3)  # the next 3 days; dates (["2024-03-01", ...]) work too
    original = forecaster.predict(forecaster.make_future_dataframe(periods=3, include_history=False))
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "dates": [row["ds"][:10] for row in forecast],
        "same_as_original": bool(np.allclose([row["yhat"] for row in forecast], original["yhat"])),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
