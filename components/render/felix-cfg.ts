/**
 * `felix.cfg` (every host) and `acl_manager.cfg` (the controller), the INI files Felix
 * 0.10 and its ACL Manager read (PROTOCOL.md, "Configuration files of that era").
 */
import type { ClusterModel, HostModel } from "../model.js";
import { PATHS } from "../model.js";
import { banner, iniSection } from "./text.js";

function logSection(model: ClusterModel, file: string): string {
  const severity = model.config.felix.logSeverity;
  return iniSection("log", [
    ["LogFilePath", `${PATHS.logDir}/${file}`],
    ["LogSeverityFile", severity],
    ["LogSeveritySys", severity],
    ["LogSeverityScreen", severity],
  ]);
}

export function renderFelixCfg(model: ClusterModel, host: HostModel): string {
  const controller = model.controller.internalAddress;
  return [
    banner(`felix.cfg for host ${host.name} (Felix 0.10).`, ";"),
    iniSection("global", [
      ["PluginAddress", controller],
      ["ACLAddress", controller],
      ["FelixHostname", host.name],
      ["LocalAddress", host.internalAddress],
      ["ResyncIntervalSecs", model.config.felix.resyncIntervalSecs],
      ["MetadataAddr", "None"],
      ["MetadataPort", 9697],
      ["EndpointRetryTimeMillis", 500],
    ]),
    logSection(model, "felix.log"),
    iniSection("connection", [
      ["ConnectionTimeoutMillis", 40000],
      ["ConnectionKeepaliveIntervalMillis", 5000],
    ]),
  ].join("\n");
}

export function renderAclManagerCfg(model: ClusterModel): string {
  const controller = model.controller.internalAddress;
  return [
    banner(`acl_manager.cfg for the controller ${model.controller.name}.`, ";"),
    iniSection("global", [
      ["PluginAddress", controller],
      ["LocalAddress", controller],
    ]),
    logSection(model, "aclmanager.log"),
  ].join("\n");
}
