// What a conformance matrix entry is, shared by the matrix and the backend-specific tests.
import { layered } from "../../src/store/layers/index.ts";
import type { Backend, Store } from "../../src/store/store.ts";
import { DEFAULT_TUNING, type Tuning } from "../../src/store/tuning.ts";

export interface StoreUnderTest {
  /** The store the suite exercises. */
  store: Store;
  /** A writable store over the same objects: the store itself, or the served directory of a read-only one. */
  seed: Store;
  /** The URI that opens `store` (what a user would pass as --store). */
  uri: string;
}

export interface StoreFactory {
  name: string;
  /** Why this entry cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  /** A fresh, empty store (a new prefix or directory each call). */
  create(): Promise<StoreUnderTest>;
  /** How the fault suite reaches this store's server through a proxy; undefined for a store without a network. */
  faults?: FaultTarget;
}

export interface FaultTarget {
  /** The server's origin, which the fault proxy forwards to. */
  upstream(): string;
  /**
   * A fresh store reaching the server through `endpoint` (the proxy), in the layers with `tuning`, and a `seed` over
   * the same objects reaching the server directly. `bucket` names another (a missing) bucket or container;
   * `badCredentials` uses a wrong secret. `secrets` are what must never be printed.
   */
  open(endpoint: string, tuning: Tuning, how?: { bucket?: string; badCredentials?: boolean }): Promise<{ store: Store; seed: Store; secrets: string[] }>;
}

/** A backend in the layers openStore puts every backend in. */
export function inLayers(backend: Backend, tuning: Tuning = DEFAULT_TUNING): Store {
  return layered(backend, tuning);
}

let counter = 0;
/** A unique prefix per created store, so tests sharing one server never see each other's objects. */
export function uniquePrefix(): string {
  return `t${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

/** The reason to skip a factory, or undefined; under the full test command a missing server is an error. */
export function skipReason(factory: Pick<StoreFactory, "name" | "unavailable">): string | undefined {
  const why = factory.unavailable();
  if (why && process.env.ASSETKIT_TEST_ALL_STORES === "1") {
    throw new Error(`store ${factory.name} must run under the full test command but: ${why}`);
  }
  return why;
}
