# syntax=docker/dockerfile:1
# flowrelay container image.
#
#   docker build -t flowrelay .
#   docker run --init -p 1935:1935 -p 1936:1936 -p 9000:9000/udp \
#     -v flowrelay-etc:/etc/flowrelay -v flowrelay-data:/var/lib/flowrelay flowrelay
#
# Two stages: the build stage has the dev dependencies (TypeScript) and compiles
# dist/; the runtime stage has only production dependencies, ffmpeg and libsrt.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Dependencies first: this layer is reused until package-lock.json changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# The default config for the image: the example config with storage under the data
# volume, and the API (if the example enables it) listening on all interfaces, since
# a loopback address is unreachable from outside the container. API tokens still
# guard it; the operator decides which ports to publish.
COPY config ./config
COPY deploy/prepare-config.mjs ./deploy/
RUN mkdir -p /out \
 && node deploy/prepare-config.mjs config/flowrelay.yaml /out/flowrelay.yaml \
      --storage-dir /var/lib/flowrelay --api-listen 0.0.0.0:8080

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# ffmpeg for pulls, recording and conversion at the edges; libsrt 1.5 (OpenSSL build)
# for the native SRT binding. Versions come from bookworm's security-updated archive.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libsrt1.5-openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root UID/GID so volume ownership is predictable across image versions
# (and runAsNonRoot can check it). /etc/flowrelay is writable by the service because
# API changes are written back into the config file (temp file + rename).
RUN groupadd --system --gid 10001 flowrelay \
 && useradd --system --uid 10001 --gid flowrelay --home-dir /var/lib/flowrelay \
      --no-create-home --shell /usr/sbin/nologin flowrelay \
 && install -d -o flowrelay -g flowrelay -m 0750 /etc/flowrelay /var/lib/flowrelay

ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY bin ./bin
COPY config ./config
COPY --from=build /app/dist ./dist
COPY --from=build --chown=flowrelay:flowrelay /out/flowrelay.yaml /etc/flowrelay/flowrelay.yaml

USER 10001:10001
# Relative paths in the config resolve inside the data volume.
WORKDIR /var/lib/flowrelay

# Declared after the config is in place, so an empty named volume starts with it.
VOLUME ["/etc/flowrelay", "/var/lib/flowrelay"]

# RTMP, RTMPS (when rtmp.tls is configured), the shared SRT port (when srt is configured)
# and the HTTP API (the image's config listens on 0.0.0.0:8080).
EXPOSE 1935 1936 8080 9000/udp

# flowrelay shuts down cleanly on SIGTERM (closes sessions, stops its ffmpeg children);
# SIGHUP (docker kill -s HUP) reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/flowrelay"]
CMD ["run", "-c", "/etc/flowrelay/flowrelay.yaml"]
