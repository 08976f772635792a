# vfio-exporter container image.
#   docker build -t vfio-exporter .
# Run it with the host's /sys, /proc and / mounted read-only and /dev/kmsg passed in; the README's
# "Install" section has the full line (docker run ... --path.sysfs=/host/sys ...).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; the build is the next step.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund && mkdir -m 0700 /state

# Node.js and nothing else (no shell, no package manager), as an unprivileged user (uid 65532).
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
# dist/package.json is the package.json the build reads its version from; it also marks dist/ as ES modules.
COPY --from=build /src/dist/package.json ./dist/package.json
COPY --from=build /src/dist/src ./dist/src
# Where the run line mounts the host; flags given to `docker run` still win over these.
ENV VFIO_EXPORTER_PATH_SYSFS=/host/sys \
    VFIO_EXPORTER_PATH_PROCFS=/host/proc \
    VFIO_EXPORTER_PATH_ROOTFS=/host/root \
    VFIO_EXPORTER_PATH_KMSG=/dev/kmsg
# The kernel log counts of this boot (--state.file), kept across restarts when this is a volume.
COPY --from=build --chown=nonroot:nonroot /state /var/lib/vfio-exporter
VOLUME /var/lib/vfio-exporter
USER nonroot
EXPOSE 9847
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/main.js"]
