#!/usr/bin/env bash
# Install Slurm (slurmctld, slurmd, the client commands) and munge for the tests' one-node cluster
# (tests/slurm_cluster.py starts and stops it). Debian or Ubuntu, as root; quiet; nothing to do when they are
# installed. Without root or apt-get it says so and the Slurm tests skip. Measured: 10.5 s on Debian 12 (slurm 22.05).
set -euo pipefail
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
if have slurmctld && have slurmd && have sbatch && have munged; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-slurm.sh: Slurm is not installed and this is not root with apt-get; the Slurm tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
