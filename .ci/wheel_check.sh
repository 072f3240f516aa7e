#!/usr/bin/env bash
# What users install: build the wheel from this checkout, install it (not editable) into a fresh
# virtual environment, and from an empty directory list the cluster profiles and train a tiny
# job spec that lives outside the repository, in a local process, to DONE.
#
# Runnable alone (`bash .ci/wheel_check.sh`); `.ci/run` calls it after the tests. Any failing
# step fails the check. Nothing of the repository is importable in the checks: they run with
# PYTHONPATH unset, from a directory outside it, with site and user profile directories of
# their own. PYTHON picks the interpreter (default python3); KEEP=1 keeps the work directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/hpc-runner-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "wheel check: work directory $work (kept)"
else
  trap 'rm -rf "$work"' EXIT
fi
started=$SECONDS
step() { echo "== wheel check [$((SECONDS - started)) s]: $* =="; }
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }

step "copying the checkout's files (tracked and new, not ignored) to build from"
mkdir "$work/src"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
  | (cd "$repo" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$work/src"

step "a fresh virtual environment"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"

# pip's complaints about this machine's missing local index pages are noise; its errors are not
pip() { "$venv_python" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

step "building the wheel"
pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/hpc_runner-*.whl)
echo "$wheel"
"$venv_python" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
shipped = sorted(n for n in names if n.startswith("hpc_runner/slurm_templates/"))
print("shipped profiles:", ", ".join(n.rsplit("/", 1)[1] for n in shipped))
assert "hpc_runner/slurm_templates/local.yaml" in names, "the wheel holds no local.yaml"
assert "hpc_runner/py.typed" in names
EOF

step "installing the wheel (not editable), with its dependencies"
pip install --quiet "$wheel"
pip list 2>/dev/null | grep -i -E "^(hpc-runner|careamics|torch|pydantic|lightning) " || true

# Everything below runs as a user would: no PYTHONPATH, no repository, empty profile places.
mkdir "$work/empty" "$work/job" "$work/site" "$work/config"
run() {
  (cd "$work/empty" && env -u PYTHONPATH -u HPC_RUNNER_TEMPLATES -u HPC_RUNNER_RUNS_DIR \
    HPC_RUNNER_SITE_PROFILES="$work/site" XDG_CONFIG_HOME="$work/config" "$@")
}

step "the installed package is the wheel's"
location=$(run "$venv_python" -c 'import hpc_runner; print(hpc_runner.__file__)')
echo "$location"
case "$location" in
  "$work/venv/"*) ;;
  *) fail "hpc_runner was imported from $location, not from the fresh environment" ;;
esac

step "hpc-runner profiles, from an empty directory"
profiles=$(run "$work/venv/bin/hpc-runner" profiles)
echo "$profiles"
for name in local gpu test_cpu; do
  grep -q "^$name " <<<"$profiles" || fail "profile '$name' is not listed"
done
grep -q "package: $work/venv/lib/python[0-9.]*/site-packages/hpc_runner/slurm_templates/local.yaml" \
  <<<"$profiles" || fail "the shipped local profile does not come from the installed package"

step "a tiny job spec outside the repository"
run "$venv_python" - "$work/job" <<'EOF'
import sys
from pathlib import Path

import numpy as np

job = Path(sys.argv[1])
rng = np.random.default_rng(0)
clean = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
np.save(job / "noisy.npy", (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32))
(job / "tiny.yaml").write_text(
    "name: wheel_check\n"
    "training:\n"
    "  algorithm: n2v\n  axes: YX\n  patch_size: [16, 16]\n  batch_size: 2\n  epochs: 2\n"
    "  n_val_patches: 2\n  masked_pixel_percentage: 5\n  roi_size: 5\n  seed: 42\n"
    "  num_workers: 0\n"
    "data:\n  train: noisy.npy\n"
    "cluster:\n  profile: local\n  timeout_min: 10\n"
)
EOF

step "hpc-runner submit --cluster local --watch, until the run ends"
run "$work/venv/bin/hpc-runner" submit "$work/job/tiny.yaml" --cluster local \
  --runs-dir "$work/runs" --watch || fail "the local training did not end well"

step "hpc-runner status --json says DONE"
status=$(run "$work/venv/bin/hpc-runner" status "$work/runs" --json)
echo "$status"
"$venv_python" - "$status" <<'EOF' || fail "the run is not DONE"
import json, sys
(run,) = json.loads(sys.argv[1])
assert run["state"] == "DONE", run["state"]
EOF
version=$(run "$venv_python" -c 'import hpc_runner; print(hpc_runner.__version__)')
grep -q "hpc_runner: $version" "$work/runs/wheel_check/run.yaml" \
  || fail "run.yaml does not record hpc_runner $version"

step "passed"
