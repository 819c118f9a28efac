# hookmq: multi-stage image on Debian 12 (bookworm).
#
#   docker build -t hookmq .
#   docker run --rm -v $PWD/hookmq.conf:/etc/hookmq/hookmq.conf:ro -p 8080:8080 hookmq
#
# The image holds every hookmq program that the tree builds, in /usr/local/bin; the default
# command is the gateway. See docs/deploy.md and docker-compose.yml.

# ---- build ------------------------------------------------------------------------------
FROM debian:12 AS build

ARG DEBIAN_FRONTEND=noninteractive

# The build packages of scripts/dev's PACKAGES, without what only the tests and benchmarks need
# (rabbitmq-server, cmocka, clang for the fuzzers, python3): the image is built with
# HQ_TESTS=OFF and HQ_BENCH=OFF.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates \
        librabbitmq-dev libcivetweb-dev libjson-c-dev libconfig-dev \
        libssl-dev libcurl4-openssl-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# `scripts/dev build` without tests and benchmarks, then install into /opt/hookmq.
RUN cmake -S /src -B /src/build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHQ_TESTS=OFF -DHQ_BENCH=OFF \
 && cmake --build /src/build -j"$(nproc)" \
 && cmake --install /src/build --prefix /opt/hookmq --strip

# ---- runtime ----------------------------------------------------------------------------
FROM debian:12

ARG DEBIAN_FRONTEND=noninteractive

# Runtime libraries only (libcurl4: the worker's http handler; libzstd1: the archive).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        librabbitmq4 libcivetweb1 libjson-c5 libconfig9 libssl3 libcurl4 libzstd1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --home-dir /var/lib/hookmq --no-create-home \
        --shell /usr/sbin/nologin hookmq \
 && install -d -o hookmq -g hookmq -m 0750 /var/lib/hookmq \
 && install -d -m 0755 /etc/hookmq

COPY --from=build /opt/hookmq/bin/ /usr/local/bin/
# hookmq-send's sample payloads (it looks in <its dir>/../share/hookmq/samples)
COPY --from=build /opt/hookmq/share/hookmq/samples/ /usr/local/share/hookmq/samples/
COPY conf/hookmq.conf.example conf/hookmq.conf.minimal /usr/share/doc/hookmq/

# Every program reads this file unless -c says otherwise.
ENV HOOKMQ_CONFIG=/etc/hookmq/hookmq.conf

# 8080: webhooks, /healthz, /readyz (gateway.listen); 9464: /metrics (gateway.metrics_listen).
# The config must listen on "0.0.0.0:..." (or "*:...") to be reachable from outside.
EXPOSE 8080 9464

USER hookmq
WORKDIR /var/lib/hookmq

CMD ["hookmq-gateway", "-c", "/etc/hookmq/hookmq.conf"]
