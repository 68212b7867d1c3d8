/**
 * Rendered files: pure functions from the cluster model (`buildModel(loadConfig(raw))`) to
 * text. No Pulumi, no I/O. Used by the Pulumi program, `npm run render` and the lab.
 */
export {
  renderFelixTxt,
  renderEndpointData,
  renderGroupsTxt,
  RESERVED_DATA_FILES,
} from "./plugin-data.js";
export { renderBirdConf, BIRD_FILTERS, BIRD_BGP_TEMPLATE } from "./bird.js";
export { renderFelixCfg, renderAclManagerCfg } from "./felix-cfg.js";
export {
  renderHostScript,
  gceBgp,
  KERNEL_MODULES,
  SNAT_CHAIN,
  HOST_DIRS,
  HOST_SYSCTLS,
  BOOT_UNIT,
  BOOT_UNIT_TIMEOUT,
  bootUnit,
  METADATA_SERVER,
  snatExclusions,
} from "./host-script.js";
export { renderEndpointScript, netnsLinkName, NETNS_NAME_RE } from "./endpoint-script.js";
export { attachLookupScript } from "./attach-script.js";
export {
  renderIgnition,
  tmpfilesConf,
  updateConf,
  UPDATE_CONF,
  IGNITION_VERSION,
} from "./ignition.js";
export {
  renderAll,
  renderPluginData,
  endpointIdsFor,
  STAND_IN_SSH_KEY,
  type RenderedFile,
  type RenderAllOptions,
} from "./all.js";
export { RenderError, shQuote, ENDPOINT_ID_RE } from "./text.js";
export { readinessScript } from "./readiness-script.js";
export { imageBuildScript } from "./image-build-script.js";
export {
  renderAgentScript,
  agentUnit,
  AGENT_SCRIPT,
  AGENT_UNIT,
  LABELS,
  ENDPOINT_RESTART_POLICY,
} from "./agent-script.js";
