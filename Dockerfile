# One image for the agent and the controller: /nodewarden has every subcommand
# (`nodewarden controller`, `nodewarden agent`, ...); /nodewarden-agent is the
# agent alone, which the DaemonSet runs because it needs half the memory
# (docs/architecture.md, "Two executables").
# Build:  docker build --build-arg VERSION=$(git describe --tags --always) -t nodewarden .
FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a code change does not refetch modules.
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=dev
ARG COMMIT=unknown
RUN for cmd in nodewarden nodewarden-agent; do \
      CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/nodewarden/nodewarden/internal/version.Version=${VERSION} -X github.com/nodewarden/nodewarden/internal/version.Commit=${COMMIT}" \
        -o /out/$cmd ./cmd/$cmd || exit 1; \
    done

# Static binaries, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nodewarden /out/nodewarden-agent /
USER 65532:65532
ENTRYPOINT ["/nodewarden"]
