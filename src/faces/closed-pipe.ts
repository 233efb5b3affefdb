// A reader that stops early (`assetkit list | head -1`) closes its pipe, and the next write fails with EPIPE, which
// Node raises as an unhandled 'error' event: a stack trace on stderr and exit 1 after the command itself succeeded.
// What the reader did not read it did not want: the write is dropped and the command ends with its own exit code,
// as it would have if the reader had read everything.

/** Makes a closed pipe on `stream` end its writes quietly; any other write error still surfaces. */
export function dropWritesToClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}
