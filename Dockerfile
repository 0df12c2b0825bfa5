# One image for the agent and the controller: /nodewarden has every subcommand
# (`nodewarden controller`, `nodewarden agent`, ...); /nodewarden-agent is the
# agent alone, which the DaemonSet runs because it needs half the memory
# (docs/architecture.md, "Two executables").
#
# `make image` builds this image without Docker (hack/image, internal/ociimage),
# reproducibly, for linux/amd64 and linux/arm64. This file is for those who use
# Docker and gives the same content: the same files, modes and owners, user,
# entrypoint, environment and labels, and executables built with the same
# flags (internal/ociimage's TestDockerfileMatchesTheGoBuilder keeps the two in
# step). Its digest differs: Docker dates files and the image by the build
# unless told otherwise (SOURCE_DATE_EPOCH below), and makes a layer per COPY.
#
# Build (BuildKit, the default builder):
#   docker build -t nodewarden \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(git log -1 --format=%cI) .
# Both platforms, dated by the commit:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --output type=image,name=REGISTRY/nodewarden:TAG,rewrite-timestamp=true,push=true \
#     --build-arg VERSION=... --build-arg COMMIT=... --build-arg CREATED=... .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a code change does not refetch modules.
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
# Cross-compiled on the build machine: static, for the architecture's baseline.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} GOFLAGS= GOEXPERIMENT= GOAMD64=v1 GOARM64=v8.0 \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/nodewarden/nodewarden/internal/version.Version=${VERSION} -X github.com/nodewarden/nodewarden/internal/version.Commit=${COMMIT}" \
      -o /out/ ./cmd/nodewarden ./cmd/nodewarden-agent

# Static executables and /etc/passwd, /etc/group; no shell, no libc, no CA
# bundle (nodewarden embeds Go's fallback roots), runs as nonroot (65532).
FROM scratch
COPY internal/ociimage/rootfs/ /
COPY --from=build /out/nodewarden /out/nodewarden-agent /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/nodewarden"]
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.source="https://github.com/nodewarden/nodewarden" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.title="nodewarden" \
      org.opencontainers.image.description="Node conditions from host events (cloud maintenance, kernel faults) and their remediation: cordon, drain through the Eviction API, undo on recovery."
