# assetkit's KServe storage initializer (the CLI is in the image too): the bundled dist/ on node:24-slim, run as
# the image's non-root `node` user. dist/ holds everything (dependencies are bundled): no npm install here.
#   npm run build && docker build -t assetkit-storage-initializer .
FROM node:24-slim
WORKDIR /opt/assetkit
COPY package.json ./
COPY dist ./dist
USER node
# KServe runs it as an init container with two arguments: <src-uri> <dest-path> (e.g. /mnt/models).
ENTRYPOINT ["node", "/opt/assetkit/dist/storage-initializer.js"]
