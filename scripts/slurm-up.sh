#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the scheduler tests (tests/test_scaleout.py).
#   bash scripts/slurm-up.sh [install]   -> prints the SLURM_CONF path to export
# "install" first apt-installs slurm-wlm (brings munge) when sbatch is missing (CI, as root).
# Its own config and ports (6917/6918) under /tmp/litpredict-slurm, so /etc/slurm is left
# alone; reuses a cluster this script started earlier. Facts: ../shared FIELD-NOTES.
set -euo pipefail
DIR=/tmp/litpredict-slurm
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

if [[ "${1:-}" == install ]] && ! command -v sbatch >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then echo "slurm-up: not root, cannot install slurm-wlm" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q slurm-wlm >&2
fi
[[ "${1:-}" == install ]] && exit 0
for tool in sbatch srun slurmctld slurmd munged; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "slurm-up: $tool not found (apt-get install slurm-wlm)" >&2; exit 1; }
done
if [[ $(id -u) -ne 0 ]]; then echo "slurm-up: needs root (munge, slurmd)" >&2; exit 1; fi

if [[ -f $CONF ]] && scontrol ping 2>/dev/null | grep -q "is UP"; then
  echo "$CONF"; exit 0
fi
HOST=$(hostname -s)
mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log /run/munge /var/log/munge /var/lib/munge
cat > "$CONF" <<CONF
ClusterName=litpredict
SlurmctldHost=$HOST
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
if ! pgrep -x munged >/dev/null; then
  [[ -f /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create 2>/dev/null || /usr/sbin/create-munge-key; }
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  runuser -u munge -- /usr/sbin/munged
fi
[[ -f $DIR/slurmctld.pid ]] && kill "$(cat "$DIR/slurmctld.pid")" 2>/dev/null || true
[[ -f $DIR/slurmd.pid ]] && kill "$(cat "$DIR/slurmd.pid")" 2>/dev/null || true
sleep 1
/usr/sbin/slurmctld -f "$CONF" -c
/usr/sbin/slurmd -f "$CONF"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then echo "$CONF"; exit 0; fi
  sleep 1
done
echo "slurm-up: the node did not become idle; see $DIR/log" >&2
exit 1
