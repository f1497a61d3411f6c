#!/usr/bin/env bash
# Run a mathcorpus stage on Google Cloud Dataflow.
#
#   export PROJECT=my-project REGION=us-central1 BUCKET=my-bucket
#   deploy/dataflow/launch.sh pool --input 'gs://my-bucket/crawl/*.warc.gz' \
#       --output gs://my-bucket/runs/pool
#
# Required: PROJECT, REGION, BUCKET (temp and staging files go to gs://$BUCKET/dataflow/).
# Optional: IMAGE (the worker image in Artifact Registry; default below), MACHINE_TYPE,
# NUM_WORKERS, MAX_WORKERS, DISK_GB, DEPS=container|requirements. Per-stage machine types
# follow deploy/README.md ("Worker shapes"). Anything after the stage's own options is passed
# to Beam, e.g. --dataflow_service_options=enable_prime or --flexrs_goal=COST_OPTIMIZED.
#
# The command waits for the job: the driver commits the output (_staging -> final names,
# stats.json last) when the job is done, so run it where it may keep running (Cloud Shell with
# tmux, a small VM, Cloud Build, a Cloud Run job).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../versions.env
source "$repo/deploy/versions.env"

if [[ $# -lt 1 ]]; then
  echo "usage: $0 STAGE [stage options] [beam options]" >&2
  exit 2
fi
stage=$1
shift
: "${PROJECT:?set PROJECT to your Google Cloud project}"
: "${REGION:?set REGION, e.g. us-central1}"
: "${BUCKET:?set BUCKET to a Cloud Storage bucket (no gs:// prefix)}"

# Worker shapes per stage (deploy/README.md explains the choice).
case "$stage" in
  pool) default_machine=n2-highcpu-16 ;;     # CPU-bound extraction, ~0.5 GB per SDK process
  dedup) default_machine=n2-standard-16 ;;   # MinHash is CPU-bound; shuffle goes to the service
  mine) default_machine=n2-highcpu-16 ;;     # CPU-bound; 8 MB scoring table per SDK process
  decontaminate) default_machine=n2-standard-8 ;;
  shards) default_machine=n2-standard-8 ;;
  *) default_machine=n2-standard-8 ;;
esac
MACHINE_TYPE=${MACHINE_TYPE:-$default_machine}
NUM_WORKERS=${NUM_WORKERS:-2}
MAX_WORKERS=${MAX_WORKERS:-100}
DISK_GB=${DISK_GB:-50}
DEPS=${DEPS:-container}
IMAGE=${IMAGE:-$REGION-docker.pkg.dev/$PROJECT/mathcorpus/$WORKER_IMAGE}

beam_args=(
  --runner=DataflowRunner
  --project="$PROJECT"
  --region="$REGION"
  --temp_location="gs://$BUCKET/dataflow/temp"
  --staging_location="gs://$BUCKET/dataflow/staging"
  --job_name="mathcorpus-$stage-$(date -u +%Y%m%d-%H%M%S)"
  --machine_type="$MACHINE_TYPE"
  --disk_size_gb="$DISK_GB"
  --num_workers="$NUM_WORKERS"
  --max_num_workers="$MAX_WORKERS"
  --autoscaling_algorithm=THROUGHPUT_BASED
  # Runner v2 (Beam adds it for Python anyway; custom containers need it) and the Dataflow
  # Shuffle service for batch GroupByKeys (dedup's bands, URL dedup) instead of worker disks.
  --experiments=use_runner_v2
  --experiments=shuffle_mode=service
)
case "$DEPS" in
  container)
    # Build and push once: docker build -f deploy/worker/Dockerfile -t "$IMAGE" . &&
    # docker push "$IMAGE"
    beam_args+=(--sdk_container_image="$IMAGE" --sdk_location=container)
    ;;
  requirements)
    beam_args+=(--setup_file="$repo/pyproject.toml"
      --requirements_file="$here/requirements.txt")
    ;;
  *)
    echo "DEPS must be container or requirements, got $DEPS" >&2
    exit 2
    ;;
esac

exec mathcorpus "$stage" "$@" "${beam_args[@]}"
