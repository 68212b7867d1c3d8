/** `containers`: Docker answers, and every system container of the host runs. */
import type { ClusterModel, HostModel } from "../../components/model.js";
import { firstLine } from "../parse.js";
import { notApplicable, type Finding, type JudgeInput, type Verdict } from "./judge.js";

/** The system containers a host runs, by role. */
export function systemContainersOf(model: ClusterModel, h: HostModel): string[] {
  return [
    "felix",
    ...(h.isController ? ["aclmgr", "plugin-network", "plugin-endpoint"] : []),
    ...(model.config.bgp.enabled ? ["bird"] : []),
  ];
}

export function judgeContainers({ t, h, facts }: JudgeInput): Verdict {
  if ("none" in t.docker) return notApplicable(t.docker.none);
  const listed = facts.containers;
  if (listed === undefined) {
    const found = firstLine(facts.section("containers").out);
    return {
      detail: "cannot list containers",
      problems: [{ subject: "docker", expected: "docker answering", found }],
    };
  }
  if (!listed.ok) {
    return {
      detail: "cannot read the container list",
      problems: [
        {
          subject: "the containers reply",
          expected: "one container per line (docker inspect)",
          found: listed.why,
        },
      ],
    };
  }
  const containers = listed.value;
  if (t.systemContainers !== true) {
    const eps = containers.filter((c) => c.role === "endpoint");
    return notApplicable(`${eps.length} endpoint container(s); ${String(t.systemContainers)}`);
  }
  const problems: Finding[] = [];
  for (const role of systemContainersOf(t.model, h)) {
    const c = containers.find((x) => x.role === role);
    if (c === undefined) {
      problems.push({ subject: role, expected: "a running container", found: "no container" });
    } else if (c.status !== "running") {
      problems.push({ subject: role, expected: "running", found: c.status });
    }
  }
  const sys = containers.filter((c) => c.role !== "endpoint");
  return {
    detail: sys.map((c) => `${c.name} ${c.status} (${c.restarts} restarts)`).join(", ") || "none",
    problems,
  };
}
