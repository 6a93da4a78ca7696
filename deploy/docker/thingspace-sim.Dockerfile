# thingspace-sim: the ThingSpace simulator, a static binary on a distroless base, as a non-root
# user. It keeps its state in memory: no volume. Build from the repository root:
#
#   docker build -f deploy/docker/thingspace-sim.Dockerfile --build-arg VERSION=$(git describe --tags --always) -t thingspace-sim .
#   docker run --rm -p 127.0.0.1:8442:8442 thingspace-sim -addr :8442 -devices 100
#
# Port: 8442 (the ThingSpace API and the simulator's /sim/v1/ admin API). See cmd/thingspace-sim/README.md.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
# The patched terraform-plugin-framework that go.mod replaces (see third_party/README.md).
COPY third_party ./third_party
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/thingspace-sim ./cmd/thingspace-sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/thingspace-sim /thingspace-sim
USER 65532:65532
EXPOSE 8442
ENTRYPOINT ["/thingspace-sim"]
# Every interface: the simulator's default (127.0.0.1) is unreachable from outside a container.
CMD ["-addr", ":8442"]
