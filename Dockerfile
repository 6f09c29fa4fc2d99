# lfsgate image: built on Debian 12, runs on Debian 12 slim with the runtime libraries only,
# as user 10001 (matches the Helm chart's podSecurityContext).
#
#   docker build -t lfsgate:0.1.0 .
#   docker run --rm -p 8080:8080 -v $PWD/lfsgate.yaml:/etc/lfsgate/config/lfsgate.yaml:ro lfsgate:0.1.0
#
# The config must set SERVER.listen to 0.0.0.0:8080 (the default is loopback only).

# ---- build ----
FROM debian:12-slim AS build
WORKDIR /src
# the same package list as a developer machine (build_pkgs in the script)
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN meson setup /build --buildtype=release -Dtests=disabled \
    && ninja -C /build \
    && install -D -m 0755 -s /build/server/lfsgate /out/usr/local/bin/lfsgate

# ---- runtime ----
FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libjwt0 libssl3 libcurl4 libyaml-0-2 libjansson4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lfsgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin lfsgate \
    && install -d -o 10001 -g 10001 /etc/lfsgate/config /var/spool/lfsgate /var/lib/lfsgate/storage
COPY --from=build /out/ /
# fail the build here, not at the first start, if a shared library is missing
RUN ! ldd /usr/local/bin/lfsgate | grep 'not found' && lfsgate --version
USER 10001:10001
WORKDIR /var/lib/lfsgate
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["lfsgate"]
CMD ["--config", "/etc/lfsgate/config/lfsgate.yaml"]
