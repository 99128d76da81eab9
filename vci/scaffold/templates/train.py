"""Train the model (a least-squares line, standard library only) and write out/weights.json."""

import json
import sys
from pathlib import Path

POINTS = [(0.0, 1.0), (1.0, 3.1), (2.0, 4.9), (3.0, 7.2), (4.0, 8.8)]


def train(out_dir: str = "out") -> Path:
    n = len(POINTS)
    mean_x = sum(x for x, _ in POINTS) / n
    mean_y = sum(y for _, y in POINTS) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in POINTS) / sum((x - mean_x) ** 2 for x, _ in POINTS)
    path = Path(out_dir) / "weights.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"slope": slope, "intercept": mean_y - slope * mean_x}))
    return path


if __name__ == "__main__":
    print(train(sys.argv[1] if len(sys.argv) > 1 else "out"))
