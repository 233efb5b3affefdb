// Stands in for the `abort-controller` polyfill in the bundle (scripts/build.ts aliases it here): Node's own classes.
// The polyfill's classes are renamed by minification, and node-fetch (under @google-cloud/storage's resumable
// uploads) accepts a signal only when its class is named AbortSignal, so every GCS upload over the resumable
// threshold failed with "Expected signal to be an instanceof AbortSignal".
const { AbortController, AbortSignal } = globalThis;
export default AbortController;
export { AbortController, AbortSignal };
