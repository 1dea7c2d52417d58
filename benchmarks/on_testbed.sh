#!/bin/bash
# Run batch_systems.py on the testbed's worker node (the submit node of its HTCondor pool and Slurm cluster, and
# where the LSF stand-in of tests/standins/lsf runs its jobs).
#
#   benchmarks/on_testbed.sh htcondor [batch_systems.py options]
#   benchmarks/on_testbed.sh slurm --sizes 100 500
#   benchmarks/on_testbed.sh lsf --sizes 100 500 --b2luigi-max 500
#
# It brings the testbed up, installs this working tree in the worker node, makes the analysis image's SIF,
# downloads b2luigi 1.3.0 and its requirements once into a wheelhouse on the shared folder (the worker node
# has no network), runs the benchmark as the worker node's user, and copies the results file back into
# benchmarks/results/.
set -euo pipefail
system=${1:?usage: benchmarks/on_testbed.sh htcondor|slurm [options]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
state=${TESTBED_STATE_DIR:-/var/tmp/b2box-testbed}
shared=$state/shared
container=b2box-testbed-pool

python3 ci/testbed.py up
python=$(python3 ci/testbed.py install-b2box | tail -1)
sif=$(python3 ci/testbed.py sif | tail -1)

wheels=$shared/b2luigi-wheels
if ! ls "$wheels"/b2luigi-1.3.0-*.whl >/dev/null 2>&1; then
    # b2luigi and luigi as wheels (pure Python), their requirements as wheels for the worker node's Python
    # (xrootd has none: batch_systems.py puts a stub in its place, see reference_stubs/)
    pool_python=$(docker exec "$container" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" b2luigi==1.3.0 luigi==3.6.0
    python3 -m pip download --quiet --dest "$wheels" --only-binary=:all: --python-version "$pool_python" \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        --platform any "python-dateutil>=2.7.5,<3" "tornado>=5.0,<7" python-daemon "parse>=1.8.4" \
        "colorama>=0.3.9" "cachetools>=5.0.0" "tenacity>=8,<9" "webdavclient3>=3.14.7" "typer>=0.12.0" \
        "shellingham>=1.5" "click>=8.0.0" "setuptools<81"
fi

bench=$shared/bench
runs=$shared/benchruns
rm -rf "$bench"
mkdir -p "$bench" "$runs"
cp -r benchmarks/*.py benchmarks/reference_stubs "$bench"/
cp -r tests/standins/lsf "$bench"/lsf-standin
mkdir -p "$bench/results"
uid=$(docker exec "$container" id -u b2box)
chown -R "$uid" "$bench" "$runs" "$wheels" 2>/dev/null || true

docker exec --user b2box --workdir "$bench" --env B2LUIGI_WHEELS="$wheels" --env LSF_STANDIN="$bench/lsf-standin" \
    "$container" \
    "$python" batch_systems.py --system "$system" --sif "$sif" --folder "$runs" "$@"
cp "$bench/results/batch_$system.json" benchmarks/results/
echo "copied to benchmarks/results/batch_$system.json"
