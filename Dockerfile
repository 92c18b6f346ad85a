# The repwatch scheduler image. Build: docker build -t repwatch .
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY checks ./checks
COPY cli ./cli
COPY config ./config
COPY db ./db
COPY delisting ./delisting
COPY demo ./demo
COPY ingest ./ingest
COPY jobs ./jobs
COPY lib ./lib
COPY migrations ./migrations
COPY reports ./reports
COPY transform ./transform
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production REPWATCH_HOME=/var/lib/repwatch
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /var/lib/repwatch && chown node:node /var/lib/repwatch
USER node
ENTRYPOINT ["node", "/app/bin/repwatch.js"]
CMD ["schedule", "--config", "/etc/repwatch/repwatch.yaml", "--http-port", "9464", "--http-host", "0.0.0.0"]
