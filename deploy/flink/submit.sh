#!/usr/bin/env bash
# Run a mathcorpus stage on the Flink cluster of the top-level docker-compose.yml (or any Flink
# cluster with Beam's Flink job server and an EXTERNAL worker pool beside each task manager).
#
#   deploy/flink/submit.sh pool --input "$MATHCORPUS_DATA/crawl/*.warc.gz" \
#       --output "$MATHCORPUS_DATA/pool"
#
# JOB_ENDPOINT and WORKER_POOL override the addresses (defaults: the compose stack). Extra Beam
# options (e.g. --parallelism=8) may follow the stage's own options.
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 STAGE [stage options] [beam options]" >&2
  exit 2
fi
stage=$1
shift
JOB_ENDPOINT=${JOB_ENDPOINT:-localhost:8099}
# Seen from each task manager: its own worker pool sidecar.
WORKER_POOL=${WORKER_POOL:-localhost:50000}
exec mathcorpus "$stage" "$@" \
  --runner=PortableRunner \
  --job_endpoint="$JOB_ENDPOINT" \
  --environment_type=EXTERNAL \
  --environment_config="$WORKER_POOL"
