# syntax=docker/dockerfile:1
# Build: cgo is needed for SQLite (mattn/go-sqlite3).
FROM golang:1.26-bookworm AS build
# The Go release keygate is built with, whatever 1.26 the image has: the go
# command fetches it from the module proxy (the image's own setting,
# GOTOOLCHAIN=local, would build with the image's Go, whatever go.mod's
# toolchain line says).
ENV GOTOOLCHAIN=go1.26.10
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces github.com/ory/x with this local module (see its README).
COPY internal/oryxshim ./internal/oryxshim
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/keygate ./cmd/keygate

# Run: a small glibc base, as a non-root user, with the data dir as a volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin keygate \
    && mkdir -p /data && chown keygate:keygate /data && chmod 0700 /data
COPY --from=build /out/keygate /usr/local/bin/keygate
USER keygate
ENV KEYGATE_DATA_DIR=/data KEYGATE_LISTEN=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/keygate"]
CMD ["serve"]
