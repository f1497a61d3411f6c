#!/usr/bin/env bash
# Build the mathcorpus Flex Template and run a stage from it.
#
#   export PROJECT=my-project REGION=us-central1 BUCKET=my-bucket
#   deploy/dataflow/launch_flex.sh build
#   deploy/dataflow/launch_flex.sh run pool input=gs://my-bucket/crawl/*.warc.gz \
#       output=gs://my-bucket/runs/pool
#
# `run` takes the template parameters of flex_template/metadata.json as NAME=VALUE. A value
# with commas (languages=en,zh) needs gcloud's other delimiter, which this script uses (^~^).
#
# Caveat (deploy/README.md, "Flex Template"): our drivers wait for the job and then commit the
# output (stats.json last); the template launcher must stay up for that, which Dataflow does not
# promise. For long jobs prefer launch.sh from a machine that stays up.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../versions.env
source "$repo/deploy/versions.env"
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
registry=$REGION-docker.pkg.dev/$PROJECT/mathcorpus
WORKER=${WORKER:-$registry/$WORKER_IMAGE}
FLEX_IMAGE=${FLEX_IMAGE:-$registry/mathcorpus-flex:$MATHCORPUS_VERSION}
TEMPLATE=gs://$BUCKET/templates/mathcorpus-$MATHCORPUS_VERSION.json

case "${1:-}" in
  build)
    docker build -f "$repo/deploy/worker/Dockerfile" -t "$WORKER" "$repo"
    docker push "$WORKER"
    docker build -f "$here/flex_template/Dockerfile" --build-arg WORKER_IMAGE="$WORKER" \
      -t "$FLEX_IMAGE" "$repo"
    docker push "$FLEX_IMAGE"
    gcloud dataflow flex-template build "$TEMPLATE" --image "$FLEX_IMAGE" \
      --sdk-language PYTHON --metadata-file "$here/flex_template/metadata.json" \
      --project "$PROJECT"
    ;;
  run)
    stage=${2:?usage: $0 run STAGE NAME=VALUE...}
    shift 2
    params="stage=$stage"
    for kv in "$@"; do params="$params~$kv"; done
    gcloud dataflow flex-template run "mathcorpus-$stage-$(date -u +%Y%m%d-%H%M%S)" \
      --template-file-gcs-location "$TEMPLATE" --project "$PROJECT" --region "$REGION" \
      --temp-location "gs://$BUCKET/dataflow/temp" \
      --staging-location "gs://$BUCKET/dataflow/staging" \
      --worker-machine-type "${MACHINE_TYPE:-n2-standard-8}" \
      --max-workers "${MAX_WORKERS:-100}" \
      --additional-experiments use_runner_v2,shuffle_mode=service \
      --parameters "^~^$params~sdk_container_image=$FLEX_IMAGE~sdk_location=container"
    ;;
  *)
    echo "usage: $0 build | run STAGE NAME=VALUE..." >&2
    exit 2
    ;;
esac
