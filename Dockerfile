# syntax=docker/dockerfile:1
# Shardflow: one image holding the `shardflow` command line (worker, topics, submit, tail, mock-llm, ...).
#   docker build -t shardflow:local .
# Stages: build (Swift toolchain), rdkafka (a librdkafka >= 2.1 runtime), runtime (Debian slim).

ARG SWIFT_VERSION=6.3

# ---- build --------------------------------------------------------------------------------------
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends librdkafka-dev libsqlite3-dev libjemalloc-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Compiled against Debian's librdkafka headers (2.0.2); the C ABI is stable, so the newer runtime
# from the rdkafka stage loads in its place. The Swift runtime is linked in statically.
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --product shardflow --static-swift-stdlib \
 && mkdir -p /out \
 && cp "$(swift build -c release --product shardflow --static-swift-stdlib --show-bin-path)/shardflow" /out/ \
 && cp /usr/libexec/swift/linux/swift-backtrace-static /out/

# ---- rdkafka ------------------------------------------------------------------------------------
# Debian 12's librdkafka 2.0.2 misreads the ApiVersions answer of current brokers ("Read underflow"),
# so the runtime takes the self-contained librdkafka 2.16 bundled in the confluent-kafka wheel, as
# scripts/setup.sh does for development machines. The wheel renames it librdkafka-<hash>.so.1 and
# sets that as its soname; ldconfig registers a library under its soname only, so the soname is set
# back to librdkafka.so.1, the name the binary asks for.
FROM python:3.11-slim-bookworm AS rdkafka
ARG TARGETARCH
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends patchelf \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform "manylinux_2_28_${arch}" --platform "manylinux2014_${arch}" \
      -d /wheels confluent-kafka==2.16.1; \
    python3 -m zipfile -e /wheels/confluent_kafka-*.whl /tmp/wheel; \
    mkdir -p /out; \
    cp /tmp/wheel/confluent_kafka.libs/librdkafka-*.so.1 /out/librdkafka.so.1; \
    chmod 0644 /out/librdkafka.so.1; \
    patchelf --set-soname librdkafka.so.1 /out/librdkafka.so.1

# ---- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libsqlite3-0 libjemalloc2 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=rdkafka /out/librdkafka.so.1 /usr/local/lib/librdkafka.so.1
COPY --from=build /out/shardflow /out/swift-backtrace-static /usr/local/bin/
# Register /usr/local/lib with the loader and fail the build if the binary misses a library.
RUN ldconfig \
 && ldd /usr/local/bin/shardflow | tee /tmp/ldd.txt \
 && ! grep -q "not found" /tmp/ldd.txt \
 && grep -q "librdkafka.so.1 => /usr/local/lib/" /tmp/ldd.txt \
 && rm /tmp/ldd.txt \
 && /usr/local/bin/shardflow --help > /dev/null
RUN useradd --system --uid 10001 --create-home --home-dir /home/shardflow shardflow \
 && mkdir -p /data \
 && chown shardflow:shardflow /data
# Readable crash backtraces in container logs.
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/bin/swift-backtrace-static
USER shardflow
WORKDIR /home/shardflow
VOLUME ["/data"]
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/shardflow"]
CMD ["--help"]
