#!/usr/bin/env bash
# Build the four ponder images from the repository root; with --push, publish them and
# write docker/image-digests.yaml: chart values that pin every image by its digest
#   helm install ponder ./helm/ponder -f docker/image-digests.yaml --set imageRegistry=$REGISTRY
# Environment: REGISTRY (default ghcr.io/ponder-dev), VERSION (default: pyproject's),
# DOCKER (default docker; podman works too), PLATFORM (e.g. linux/amd64).
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${REGISTRY:-ghcr.io/ponder-dev}
DOCKER=${DOCKER:-docker}
VERSION=${VERSION:-$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')}
PUSH=0
[[ "${1:-}" == "--push" ]] && PUSH=1
# image name -> Dockerfile (names match the chart's values: router.image, operator.image, poolImages)
IMAGES=("ponder:router" "ponder-operator:operator" "ponder-pool:pool-cpu" "ponder-pool-cuda:pool-cuda")
for pair in "${IMAGES[@]}"; do
  name=${pair%%:*}; file=${pair##*:}
  echo "== $REGISTRY/$name:$VERSION (docker/$file.Dockerfile)"
  $DOCKER build ${PLATFORM:+--platform "$PLATFORM"} -f "docker/$file.Dockerfile" -t "$REGISTRY/$name:$VERSION" .
done
[[ $PUSH == 1 ]] || exit 0
for pair in "${IMAGES[@]}"; do $DOCKER push "$REGISTRY/${pair%%:*}:$VERSION"; done
digest() { $DOCKER inspect --format '{{index .RepoDigests 0}}' "$REGISTRY/$1:$VERSION" | sed 's/.*@//'; }
cat > docker/image-digests.yaml <<YAML
# Written by docker/build.sh --push for $REGISTRY, version $VERSION.
imageRegistry: $REGISTRY
router:
  image: {repository: ponder, tag: "$VERSION", digest: "$(digest ponder)"}
operator:
  image: {repository: ponder-operator, tag: "$VERSION", digest: "$(digest ponder-operator)"}
  poolImages:
    cpu: {repository: ponder-pool, tag: "$VERSION", digest: "$(digest ponder-pool)"}
    cuda: {repository: ponder-pool-cuda, tag: "$VERSION", digest: "$(digest ponder-pool-cuda)"}
YAML
echo "wrote docker/image-digests.yaml"
