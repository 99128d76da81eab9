"""Signing and attesting an image: what they cost next to a warm ``vci package`` of the same run.

Measured in the same process, medians of repeated calls:
  sign     = KeySigner.sign of a cosign simple-signing payload (ECDSA P-256 and Ed25519), and verify
  dsse     = sign_envelope of a ~5 KB SLSA statement, and open_envelope of it
  sbom     = render_sbom for a 50-component image (the first call, which imports cyclonedx, apart)
  evidence = base_dpkg_status + image_evidence (SBOM of 50 distributions and the base's packages,
             provenance) + one signature + two envelopes, in a process that has imported what `vci
             package` imports: what signing and attesting add to it, without and with the caches
  package  = a warm `vci package` of a small run on the Debian test base into an OCI layout (every layer
             cached), for the ratio
  push     = a warm `vci package --push` to a real registry, unsigned and signed (the whole cost)
Target (issue #19): signing and attesting add <= 5% to a warm package. Never asserts.

    python benchmarks/signing.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


class Scaler:
    def __init__(self, artifacts):
        self.factor = float(Path(artifacts["factor"]).read_text())

    def predict(self, data):
        return [x * self.factor for x in data]


def logged_run(store: Path, factor: str):
    """A committed run of the Scaler in ``store`` (a directory)."""
    import vci
    from vci.config import load_settings

    settings = load_settings({"store": str(store), "project": "scaler"}, cwd=store.parent, environ={})
    (store.parent / f"factor-{factor}.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", store.parent / f"factor-{factor}.txt")
    run.log_model(Scaler, artifacts=["factor"])
    run.commit()
    return run


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def components(n: int = 50):
    from vci.sign.sbom import Component

    return [
        Component(f"pkg{i}", f"1.{i}", "pypi", {"sha256": f"{i:02x}" * 32}, ("MIT",), f"pkg:pypi/pkg{i}@1.{i}")
        for i in range(n)
    ]


def measure_keys(tmp: Path, repeat: int) -> None:
    from vci.sign.dsse import INTOTO_PAYLOAD_TYPE, open_envelope, sign_envelope
    from vci.sign.keys import ALGORITHMS, generate_key_pair, signer_from
    from vci.sign.simplesigning import simple_signing_payload

    payload = simple_signing_payload("registry.example.com/ml/iris", "sha256:" + "ab" * 32)
    statement = b'{"_type":"https://in-toto.io/Statement/v1","predicate":' + b'{"x":"' + b"y" * 5000 + b'"}}'
    for algorithm in ALGORITHMS:
        signer = signer_from(str(generate_key_pair(tmp, algorithm, algorithm=algorithm)[0]), {})
        signature = signer.sign(payload)
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement, signer)
        sign = median_ms(lambda s=signer: s.sign(payload), repeat)
        verify = median_ms(lambda s=signer, sig=signature: s.public_key.verify(payload, sig), repeat)
        dsse = median_ms(lambda s=signer: sign_envelope(INTOTO_PAYLOAD_TYPE, statement, s), repeat)
        opened = median_ms(lambda s=signer, e=envelope: open_envelope(e, [s.public_key]), repeat)
        print(
            f"{algorithm:11s} sign {sign:.3f} ms  verify {verify:.3f} ms  dsse sign {dsse:.3f} ms  open {opened:.3f} ms"
        )


def measure_sbom(repeat: int) -> None:
    from vci.sign.sbom import render_sbom

    items = components()
    start = time.perf_counter()
    render_sbom("r/x", "sha256:" + "cd" * 32, items)
    first = (time.perf_counter() - start) * 1000
    warm = median_ms(lambda: render_sbom("r/x", "sha256:" + "cd" * 32, items), max(10, repeat // 10))
    print(f"render_sbom, 50 components: first call {first:.1f} ms (imports cyclonedx), then median {warm:.2f} ms")


def measure_against_package(tmp: Path) -> None:
    """A warm `vci package` (a fresh process, every layer cached) against what the evidence and its
    signatures add to such a process: their own imports (cryptography, cyclonedx), loading the key, the
    SBOM of 50 distributions, the provenance and three signatures."""
    import os
    import subprocess

    from images import base_image_layout
    from vci.sign.keys import generate_key_pair

    env = {**os.environ, "VCI_CACHE_DIR": str(tmp / "cache"), "PYTHONPATH": str(ROOT)}
    run = logged_run(tmp / "store", "2")
    base = f"oci:{base_image_layout()}:base"  # Debian bookworm + python3: ~100 packages in its dpkg status
    argv = [sys.executable, "-m", "vci", "package", run.id, "--store", str(tmp / "store"), "--base", base]
    argv += ["--layout", str(tmp / "image")]
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)  # cold: fills the layer cache
    warm = statistics.median(
        _timed(lambda: subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)) for _ in range(5)
    )
    site = tmp / "site"
    for i in range(50):
        info = site / f"pkg{i}-1.{i}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Name: pkg{i}\nVersion: 1.{i}\nLicense-Expression: MIT\n")
    key = generate_key_pair(tmp / "keys")[0]
    for cache in (None, str(tmp / "evidence-cache")):
        code = EVIDENCE.format(
            store=tmp / "store",
            run=run.id,
            layout=tmp / "image",
            site=site,
            key=key,
            cache=repr(cache),
            base_layout=base_image_layout(),
        )
        cost = statistics.median(
            float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)
            for _ in range(5)
        )
        what = "the SBOM and dpkg status cached (a warm package of the same image)" if cache else "nothing cached"
        print(f"warm vci package {warm * 1000:.0f} ms; evidence + 3 signatures add {cost * 1000:.0f} ms, {what}")
        print(f"  = {cost / warm:.1%} of the warm package (target <= 5%)")


EVIDENCE = """
import time
from pathlib import Path
import vci.build.package  # what `vci package` has imported anyway
from vci.oci.layout import read_layout
from vci.runs import get_run
run, image = get_run("{run}", store="{store}"), read_layout("{layout}")
base = read_layout("{base_layout}", "base")
start = time.perf_counter()
from vci.build.evidence import base_dpkg_status, image_evidence
from vci.sign.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from vci.sign.keys import signer_from
from vci.sign.simplesigning import simple_signing_payload
signer = signer_from("{key}", {{}})
evidence = image_evidence(run, image, base_spec="base", base_digest=None, site_dir=Path("{site}"),
    dpkg_status=base_dpkg_status(base, cache_dir={cache}),
    ci=None, started="2026-12-01T12:00:00Z", finished="2026-12-01T12:00:01Z", parameters={{}}, cache_dir={cache})
signer.sign(simple_signing_payload("r/x", image.digest))
sign_envelope(INTOTO_PAYLOAD_TYPE, evidence.provenance, signer)
sign_envelope(INTOTO_PAYLOAD_TYPE, evidence.sbom, signer)
print(time.perf_counter() - start)
"""


def measure_signed_push(tmp: Path, repeat: int = 5) -> None:
    """The issue's target end to end: a warm `vci package --push` to a real registry, without a signing
    key and with one (signature, SBOM and provenance attached beside the image), alternated."""
    import os
    import subprocess

    from images import base_image_layout
    from registry import RegistryServer
    from vci.sign.keys import generate_key_pair

    env = {**os.environ, "VCI_CACHE_DIR": str(tmp / "push-cache"), "PYTHONPATH": str(ROOT)}
    env.pop("VCI_SIGNING_KEY", None)
    run = logged_run(tmp / "push-store", "3")
    signed_env = {**env, "VCI_SIGNING_KEY_FILE": str(generate_key_pair(tmp / "push-keys")[0])}
    with RegistryServer(tmp / "registry") as registry:
        argv = [sys.executable, "-m", "vci", "package", run.id, "--store", str(tmp / "push-store")]
        argv += ["--base", f"oci:{base_image_layout()}:base", "--push", f"{registry.host}/ml/bench"]
        for environ in (env, signed_env):  # cold: the layer cache, the base's dpkg status, the pushes
            subprocess.run(argv, env=environ, check=True, capture_output=True, timeout=600)
        plain, signed = [], []
        for _ in range(repeat):
            plain.append(_timed(lambda: subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)))
            signed.append(
                _timed(lambda: subprocess.run(argv, env=signed_env, check=True, capture_output=True, timeout=600))
            )
    a, b = statistics.median(plain), statistics.median(signed)
    print(f"warm vci package --push: {a * 1000:.0f} ms unsigned, {b * 1000:.0f} ms signed and attested")
    print(f"  = +{b / a - 1:.1%} (target <= 5%)")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vci-bench-sign-") as tmp:
        measure_keys(Path(tmp), args.repeat)
        measure_sbom(args.repeat)
        measure_against_package(Path(tmp))
        measure_signed_push(Path(tmp))


if __name__ == "__main__":
    main()
