# GopherMQ image: built on Debian bookworm, run on bookworm-slim as a non-root user.
#   docker build -t gophermq .
#   docker run -p 8082:8082 -p 9001:9001 -v gophermq-data:/var/lib/gophermq gophermq \
#     broker --config /etc/gophermq/gophermq.yaml
# TLS: mount the certificate and key read-only and name them with GOPHERMQ_TLS_CERT__FILE and
# GOPHERMQ_TLS_KEY__FILE (docs/operations.md, "TLS certificates"); without them it serves HTTP.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libboost1.81-dev libboost-json1.81-dev \
      libboost-program-options1.81-dev prometheus-cpp-dev libsystemd-dev libyaml-cpp-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt README.md ./
COPY app app
COPY auth auth
COPY bench bench
COPY broker broker
COPY config config
COPY docs docs
COPY http http
COPY metrics metrics
COPY service service
COPY storage storage
COPY systemd systemd
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGOPHERMQ_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
 && cmake --build build -j"$(nproc)" --target gophermq \
 && DESTDIR=/out cmake --install build --strip

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-program-options1.81.0 libprometheus-cpp-core1.0 libyaml-cpp0.7 \
      libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gophermq \
 && install -d -o gophermq -g gophermq -m 0700 /var/lib/gophermq
COPY --from=build /out/usr/bin/gophermq /usr/bin/gophermq
COPY --from=build /out/etc/gophermq /etc/gophermq
USER gophermq
# Durable by default: the write-ahead log (docs/storage.md) in a volume, created above owned by
# the user so a new volume starts with that owner. The config file's storage.dir is the same, and
# GOPHERMQ_STORAGE_DIR= (empty) runs the broker in memory only.
ENV GOPHERMQ_STORAGE_DIR=/var/lib/gophermq
VOLUME /var/lib/gophermq
EXPOSE 8082 9001
# bash's /dev/tcp keeps curl out of the image: healthy while GET /ready answers 204.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8082 && printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 204 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["gophermq"]
CMD ["broker"]
