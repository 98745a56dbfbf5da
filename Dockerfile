# syntax=docker/dockerfile:1
#
# Images of the compose stack, built from this repository:
#   docker build -t netpulse .                              # the agent (default target)
#   docker build --target otelcol -t otelcol-netpulse .     # the collector (otel-collector/)
#
# The agent runs as an unprivileged user; the binary carries the single file
# capability ICMP needs (cap_net_raw), which the container must allow
# (compose.yaml: cap_drop ALL, cap_add NET_RAW). Do not set
# no-new-privileges: it would stop the binary from gaining that capability.

ARG GO_VERSION=1.26.8
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY internal/ internal/
# The revision build_info reports: .git is not in the context (.dockerignore),
# so it comes as an argument: `docker build --build-arg REVISION=$(git rev-parse HEAD) .`;
# compose passes $NETPULSE_REVISION, which `task up` sets.
ARG VERSION=dev
ARG REVISION=
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X github.com/netpulse/netpulse/internal/version.Version=${VERSION} -X github.com/netpulse/netpulse/internal/version.Revision=${REVISION}" \
      -o /out/netpulse ./cmd/netpulse

# The collector from the sources committed in otel-collector/builder: the
# same build as otel-collector/build.sh, which CI tests.
FROM golang:${GO_VERSION}-bookworm AS otelcol-build
WORKDIR /src/otel-collector/builder
COPY otel-collector/builder/ ./
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -mod=readonly -ldflags='-s -w' -o /out/otelcol-netpulse .

FROM alpine:${ALPINE_VERSION} AS otelcol
RUN apk add --no-cache ca-certificates
COPY --from=otelcol-build /out/otelcol-netpulse /usr/local/bin/otelcol-netpulse
COPY otel-collector/config.yaml /etc/otelcol/config.yaml
USER 10001:10001
EXPOSE 4317 4318 8889 13133
ENTRYPOINT ["/usr/local/bin/otelcol-netpulse"]
CMD ["--config=/etc/otelcol/config.yaml"]

# The agent: the last stage, so a plain `docker build .` produces it.
FROM alpine:${ALPINE_VERSION} AS netpulse
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="netpulse" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN apk add --no-cache ca-certificates
COPY --from=build /out/netpulse /usr/local/bin/netpulse
# The file capability is set in this stage so that it is part of the final
# layer; setcap is removed again.
RUN apk add --no-cache --virtual .setcap libcap-setcap \
    && setcap cap_net_raw+ep /usr/local/bin/netpulse \
    && apk del .setcap \
    && mkdir -p /var/lib/netpulse \
    && chown 65532:65532 /var/lib/netpulse
# Result history goes to /var/lib/netpulse (XDG_STATE_HOME/netpulse) unless
# the config says otherwise; mount a volume there.
ENV XDG_STATE_HOME=/var/lib
VOLUME /var/lib/netpulse
USER 65532:65532
EXPOSE 9517
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD wget -q -O /dev/null http://127.0.0.1:9517/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/netpulse"]
