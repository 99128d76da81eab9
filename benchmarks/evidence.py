"""Signing's cost where users meet it: a warm `vci package --push` with and without a signing key, and
the policy check a deploy makes before it changes anything.

Measured in the same run, against a real registry on 127.0.0.1 (medians of N):
  package        = package() of a run whose image is built and pushed already (a CI retry, a re-tag)
  package+sign   = the same with VCI_SIGNING_KEY_FILE set: the image signed, its SBOM and provenance
                   made and attached (the second time: one signature kept, each attestation replaced)
  verify         = check_deployable() of the signed image against a policy asking for signature, SBOM
                   and provenance (what `vci deploy IMAGE@DIGEST` and `vci promote` add)
Targets: package+sign <= 1.05x package; verify <= 50 ms.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
ARTIFACT_MB = int(os.environ.get("BENCH_MB", "20"))


class Scaler:
    def __init__(self, artifacts):
        self.path = artifacts["weights"]

    def predict(self, data):
        return data


def median_ms(fn) -> float:
    return paired_ms(fn, lambda: None)[0]


def paired_ms(first, second) -> tuple[float, float]:
    """Medians of ``first`` and ``second`` timed alternately (so the machine's drift hits both alike)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def cli(run_id: str, options, env: dict):
    """``vci package`` as a user runs it (a new process: start-up, settings, build from cache, push)."""
    argv = ["vci", "package", run_id, "--push", options.push[0], "--base", options.base, "--output", "json"]
    return lambda: subprocess.run(argv, env=env, check=True, capture_output=True, timeout=300)


def main() -> None:
    import vci
    from images import scratch_base_layout
    from registry import RegistryServer
    from vci.build import Options
    from vci.build.package import package
    from vci.config import load_settings
    from vci.sign.keys import generate_key_pair
    from vci.verification import check_deployable

    with tempfile.TemporaryDirectory() as tmp, RegistryServer(Path(tmp) / "registry") as reg:
        root = Path(tmp)
        os.environ["VCI_CACHE_DIR"] = str(root / "cache")
        private, public = generate_key_pair(root / "keys")
        (root / "weights.bin").write_bytes(os.urandom(ARTIFACT_MB << 20))
        settings = load_settings({"store": str(root / "store"), "project": "bench"}, cwd=root, environ={})
        run = vci.init("bench", settings=settings)
        run.log_artifact("weights", root / "weights.bin")
        run.log_model(Scaler, artifacts=["weights"])
        run.commit()
        options = Options(base=scratch_base_layout(root / "base"), push=[f"{reg.host}/bench/model"])
        result = package(settings, run.id, options)  # cold: build and push once
        env = {**os.environ, "VCI_STORE": str(root / "store"), "VCI_PROGRESS": "0"}
        signing = {**env, "VCI_SIGNING_KEY_FILE": str(private)}
        subprocess.run(
            ["vci", "package", run.id, "--push", options.push[0], "--base", options.base],
            env=signing,
            check=True,
            capture_output=True,
            timeout=300,
        )  # the first signature and attestations
        plain_cli, signed_cli = paired_ms(cli(run.id, options, env), cli(run.id, options, signing))

        def signed_package():
            os.environ["VCI_SIGNING_KEY_FILE"] = str(private)
            try:
                package(settings, run.id, options)
            finally:
                del os.environ["VCI_SIGNING_KEY_FILE"]

        plain, signed = paired_ms(lambda: package(settings, run.id, options), signed_package)
        environment = settings.environment("production")
        environment.verify = {"keys": [str(public)], "require": ["signature", "sbom", "provenance"]}
        image = f"{reg.host}/bench/model@{result['digest']}"
        verify = median_ms(lambda: check_deployable(settings, environment, image, insecure=True))
    print(f"warm `vci package` (CLI), {ARTIFACT_MB} MB artifact: {plain_cli:.0f} ms (median of {RUNS})")
    print(f"  with a signing key: {signed_cli:.0f} ms; ratio {signed_cli / plain_cli:.3f}x (target <= 1.05x)")
    print(f"package() in process: {plain:.0f} ms; signed {signed:.0f} ms (+{signed - plain:.0f} ms)")
    print(f"deploy's policy check:       {verify:.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
