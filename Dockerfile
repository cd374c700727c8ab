# ember serve in a container: Debian 12 (bookworm), built from this repository.
#
#   docker build -t ember:0.1.0 .
#   docker run --rm -p 8080:8080 -v ember-cache:/cache ember:0.1.0      # serves $EMBER_MODEL
#
# The CPU kernels (AVX2, AVX-512, NEON) are chosen at run time, so the image
# runs on any x86-64 (or arm64, built there). The model is not in the image:
# it is downloaded into the Hugging Face cache under /cache (a volume), or
# mount a model directory and pass -m /models/NAME. deploy/k8s/ runs it on
# Kubernetes; docs/deploy.md explains both.

FROM debian:bookworm AS build
WORKDIR /src
COPY . .
# the build dependencies, as a developer machine gets them (apt, no test tools)
RUN ./scripts/setup.sh --no-test-tools \
 && cmake -S . -B /tmp/build -DCMAKE_BUILD_TYPE=Release -DEMBER_TESTS=OFF -DEMBER_CUDA=OFF \
          -DCMAKE_INSTALL_PREFIX=/opt/ember \
 && cmake --build /tmp/build -j"$(nproc)" \
 && cmake --install /tmp/build \
 && /opt/ember/bin/ember --version

FROM debian:bookworm-slim
# the shared libraries ember and libember link (readelf -d: NEEDED)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libjansson4 libmicrohttpd12 libpcre2-8-0 libutf8proc2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /cache --shell /usr/sbin/nologin ember \
 && mkdir -p /cache && chown ember:ember /cache
COPY --from=build /opt/ember/bin/ember /usr/local/bin/ember
COPY --from=build /opt/ember/lib/libember.so* /usr/local/lib/
RUN ldconfig && ember --version
ENV HF_HOME=/cache \
    EMBER_MODEL=BAAI/bge-small-en-v1.5
USER 10001:10001
VOLUME /cache
EXPOSE 8080
ENTRYPOINT ["ember"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
