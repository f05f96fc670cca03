#!/usr/bin/env bash
# Install (once) a single-node SLURM for tests/test_slurm.py: Debian's slurm-wlm and munge.
#   usage: tests/peers/setup_slurm.sh
# Idempotent: when slurmctld, slurmd, sbatch and munged are on the machine, nothing is done.
# Installing needs root and apt (CI runs `make test` as root on Debian). Anywhere else it says
# why it cannot and exits 0: the test then skips, naming the reason (and fails under CI=true).
set -euo pipefail

have_all() {
    for tool in slurmctld slurmd sbatch squeue scontrol munged; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || return 1
    done
}

if have_all; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_slurm: slurm-wlm/munge are not installed and this is not a root shell with apt-get;" \
        "tests/test_slurm.py will be skipped (run: apt-get install -y slurm-wlm munge)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# the package lists of a fresh container are empty: update once, then install
if ! apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
have_all
echo "SLURM test peer installed (slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm), munge)"
