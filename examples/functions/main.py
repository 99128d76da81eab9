"""A plain Python function as the model: log it (pickled by value), load it back as the server does,
call it.

Run from anywhere:  python examples/functions/main.py
"""

import json

import vci

VAT = 0.2


def quote(order):
    """``{"items": [{"price", "qty"}], "coupon": optional fraction}`` -> net, VAT and total."""
    net = sum(item["price"] * item["qty"] for item in order["items"]) * (1 - order.get("coupon", 0))
    return {"net": round(net, 2), "vat": round(net * VAT, 2), "total": round(net * (1 + VAT), 2)}


def main() -> dict:
    run = vci.init(project="functions-example")
    run.log_model(quote)  # cloudpickled by value: the function and what it uses (VAT)
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    order = {"items": [{"price": 12.5, "qty": 2}, {"price": 5.0, "qty": 1}], "coupon": 0.1}
    prediction = model.predict(order)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": prediction,
        "same_as_original": prediction == quote(order),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
