# thingspace-relay: a static binary on a distroless base, running as a non-root user, with its
# SQLite database on the /data volume. Build from the repository root:
#
#   docker build -f deploy/docker/thingspace-relay.Dockerfile --build-arg VERSION=$(git describe --tags --always) -t thingspace-relay .
#
# Ports: 9001 ingest (ThingSpace), 9090 API (the provider), 9091 admin (/readyz, /metrics).
# See cmd/thingspace-relay/README.md, "Container".

FROM golang:1.26 AS build
WORKDIR /src
# The module download is its own layer: a source change does not fetch the modules again.
COPY go.mod go.sum ./
# The patched terraform-plugin-framework that go.mod replaces (see third_party/README.md).
COPY third_party ./third_party
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: the SQLite driver is pure Go, so the binary needs no libc and runs on a base
# image without one.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/thingspace-relay ./cmd/thingspace-relay
# The volume's mount point, created here so that it can be copied with the runtime user as its
# owner (the distroless image has no shell to run mkdir or chown in).
RUN mkdir -m 0700 /out/data

# static: CA certificates (an https -forward-to, PostgreSQL over TLS) and time zones, no libc,
# no shell. The nonroot variant's user is 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/thingspace-relay /thingspace-relay
# Owned by the runtime user, mode 0700: Docker initialises an empty named volume from the
# image's directory, ownership and mode included, so the relay (not root) can create relay.db,
# its -wal and -shm files there. A host directory bind-mounted instead keeps its own owner: give
# it to 65532 (chown 65532:65532 DIR) or run with --user set to its owner.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
# The API and admin listeners bind every interface: inside a container, loopback would be
# reachable from nowhere. Plain HTTP on them still needs RELAY_BEHIND_TLS_PROXY=true, or TLS
# (RELAY_TLS_CERT, RELAY_TLS_KEY): the image does not choose for you.
ENV RELAY_STORE=sqlite:/data/relay.db \
    RELAY_INGEST_ADDR=:9001 \
    RELAY_API_ADDR=:9090 \
    RELAY_ADMIN_ADDR=:9091
EXPOSE 9001 9090 9091
# healthcheck GETs the admin /readyz (no curl in a distroless image).
HEALTHCHECK --interval=30s --timeout=10s CMD ["/thingspace-relay", "healthcheck"]
ENTRYPOINT ["/thingspace-relay"]
CMD ["serve"]
