/** The plugin as a library: both roles can run in-process (tests, bench) or via the CLI. */
export * from "./parse.js";
export * from "./state.js";
export * from "./protocol.js";
export {
  DataStore,
  MAX_FILE_BYTES,
  storeTuning,
  type DataStoreOptions,
  type DataStoreTuning,
} from "./store.js";
export { FelixConnection, type FelixConnectionOptions, type Outcome } from "./felix.js";
export { EndpointPlugin, type EndpointPluginOptions } from "./endpoint.js";
export { NetworkPlugin, type NetworkPluginOptions } from "./network.js";
export { createLogger, type PluginLogger } from "./log.js";
