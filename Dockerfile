# The Causeway image: the CLI, and the kubernetes-runtime worker that deploy/worker/deployment.yaml
# runs (`causeway worker --runtime kubernetes`). Step pods use the agent image (agent/Dockerfile).
#   docker build -t ghcr.io/causeway-ci/causeway:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /causeway
COPY package.json package-lock.json ./
# The lockfile lists only this platform's optional binaries (docs/decisions.md): fall back as .ci/run does.
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund --no-save
COPY tsconfig.json ./
COPY agent ./agent
COPY activities ./activities
COPY bench ./bench
COPY cli ./cli
COPY common ./common
COPY schemas ./schemas
COPY test ./test
COPY workers ./workers
COPY workflows ./workflows
# npm run build bundles the CLI's client commands and, with a C compiler (not in this image), the C helpers.
COPY scripts/bundle-cli.mjs scripts/build-helpers.sh ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /causeway
COPY --from=build /causeway/package.json ./
COPY --from=build /causeway/node_modules ./node_modules
COPY --from=build /causeway/dist ./dist
COPY bin ./bin
RUN ln -s /causeway/bin/causeway /usr/local/bin/causeway && mkdir -p /var/lib/causeway && chown 10001:10001 /var/lib/causeway
# Uploads (-i) wait here until the build's pods have fetched them; an emptyDir in the Deployment.
ENV CAUSEWAY_HOME=/var/lib/causeway NODE_ENV=production
USER 10001:10001
ENTRYPOINT ["causeway"]
