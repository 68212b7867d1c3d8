// The policy pack's rules, called directly with good and bad resource properties.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  allowsTcpPort,
  dockerProviderViolations,
  ipForwardViolations,
  openToWorldViolations,
  sshViolations,
  workloadEndpointViolations,
} from "../policy/rules.js";

describe("policy: no ingress from 0.0.0.0/0 except ICMP", () => {
  it("accepts ICMP from anywhere", () => {
    assert.deepEqual(
      openToWorldViolations({ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "icmp" }] }),
      [],
    );
  });
  it("accepts TCP from a listed range", () => {
    assert.deepEqual(
      openToWorldViolations({
        sourceRanges: ["192.168.0.0/16"],
        allows: [{ protocol: "tcp" }, { protocol: "udp" }],
      }),
      [],
    );
  });
  it("accepts egress rules and tag-sourced rules", () => {
    assert.deepEqual(
      openToWorldViolations({
        direction: "EGRESS",
        sourceRanges: ["0.0.0.0/0"],
        allows: [{ protocol: "tcp" }],
      }),
      [],
    );
    assert.deepEqual(
      openToWorldViolations({
        sourceTags: ["calico-host"],
        allows: [{ protocol: "tcp", ports: ["179"] }],
      }),
      [],
    );
  });
  it("rejects TCP, UDP or all protocols from 0.0.0.0/0, one violation per allow", () => {
    const v = openToWorldViolations({
      sourceRanges: ["10.0.0.0/8", "0.0.0.0/0"],
      allows: [
        { protocol: "icmp" },
        { protocol: "tcp", ports: ["80", "443"] },
        { protocol: "all" },
      ],
    });
    assert.equal(v.length, 2);
    assert.match(v[0]!, /from 0\.0\.0\.0\/0 allows tcp ports 80,443/);
    assert.match(v[1]!, /allows all \(all ports\)/);
  });
  it("rejects ::/0 too, and lower-case direction", () => {
    assert.equal(
      openToWorldViolations({
        direction: "ingress",
        sourceRanges: ["::/0"],
        allows: [{ protocol: "udp" }],
      }).length,
      1,
    );
  });
});

describe("policy: SSH only from listed ranges", () => {
  const ssh = { protocol: "tcp", ports: ["22"] };
  it("knows which allows cover tcp/22", () => {
    assert.equal(allowsTcpPort(ssh, 22), true);
    assert.equal(allowsTcpPort({ protocol: "tcp", ports: ["20-30"] }, 22), true);
    assert.equal(allowsTcpPort({ protocol: "tcp", ports: ["9901-9906"] }, 22), false);
    assert.equal(allowsTcpPort({ protocol: "tcp" }, 22), true, "no ports = all ports");
    assert.equal(allowsTcpPort({ protocol: "all" }, 22), true);
    assert.equal(allowsTcpPort({ protocol: "udp", ports: ["22"] }, 22), false);
  });
  it("accepts SSH from an administrator's range, and other ports from anywhere are not its business", () => {
    assert.deepEqual(sshViolations({ sourceRanges: ["203.0.113.0/24"], allows: [ssh] }), []);
    assert.deepEqual(
      sshViolations({ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "icmp" }] }),
      [],
    );
  });
  it("rejects SSH from 0.0.0.0/0, also through a port range or all ports", () => {
    assert.match(
      sshViolations({ sourceRanges: ["0.0.0.0/0"], allows: [ssh] })[0]!,
      /open to 0\.0\.0\.0\/0/,
    );
    assert.equal(
      sshViolations({
        sourceRanges: ["0.0.0.0/0"],
        allows: [{ protocol: "tcp", ports: ["1-1024"] }],
      }).length,
      1,
    );
    assert.equal(
      sshViolations({ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp" }] }).length,
      1,
    );
  });
  it("ignores rules limited to destination ranges (traffic to containers, not the hosts)", () => {
    const toPool = { sourceRanges: ["192.168.0.0/16"], destinationRanges: ["192.168.0.0/16"] };
    assert.deepEqual(
      sshViolations({ ...toPool, allows: [{ protocol: "tcp" }] }, ["203.0.113.0/24"]),
      [],
    );
    assert.equal(
      sshViolations(
        { ...toPool, destinationRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp" }] },
        ["203.0.113.0/24"],
      ).length,
      1,
      "a destination of anywhere includes the hosts",
    );
  });
  it("rejects SSH with no source at all (GCE reads that as anywhere)", () => {
    assert.equal(sshViolations({ allows: [ssh] }).length, 1);
  });
  it("rejects the world in two halves, slices that add up, and one wide range", () => {
    const halves = sshViolations({ sourceRanges: ["0.0.0.0/1", "128.0.0.0/1"], allows: [ssh] });
    assert.deepEqual(halves, [
      "SSH (tcp/22) from 0.0.0.0/1 is wider than /16 (2,147,483,648 addresses; SSH ranges may be /16 or narrower)",
      "SSH (tcp/22) from 128.0.0.0/1 is wider than /16 (2,147,483,648 addresses; SSH ranges may be /16 or narrower)",
    ]);
    const six = ["1", "2", "3", "4", "5", "6"].map((n) => `${n}.1.0.0/16`);
    const slices = sshViolations({ sourceRanges: six, allows: [ssh] });
    assert.equal(slices.length, 1, JSON.stringify(slices));
    assert.match(
      slices[0]!,
      /^SSH \(tcp\/22\) from 1\.1\.0\.0\/16, .* together cover 393,216 public/,
    );
    assert.deepEqual(sshViolations({ sourceRanges: six.slice(0, 5), allows: [ssh] }), []);
    assert.match(
      sshViolations({ sourceRanges: ["8.8.0.0/15"], allows: [ssh] })[0] ?? "",
      /8\.8\.0\.0\/15 is wider than \/16/,
    );
    // A rule that does not open SSH is not this policy's business.
    assert.deepEqual(
      sshViolations({ sourceRanges: ["0.0.0.0/1", "128.0.0.0/1"], allows: [{ protocol: "icmp" }] }),
      [],
    );
  });
  it("with configured allowed ranges, rejects any other range", () => {
    const allowed = ["203.0.113.0/24"];
    assert.deepEqual(
      sshViolations({ sourceRanges: ["203.0.113.0/24"], allows: [ssh] }, allowed),
      [],
    );
    const v = sshViolations(
      { sourceRanges: ["203.0.113.0/24", "198.51.100.0/24"], allows: [ssh] },
      allowed,
    );
    assert.equal(v.length, 1);
    assert.match(
      v[0]!,
      /198\.51\.100\.0\/24, which is not one of the allowed ranges 203\.0\.113\.0\/24/,
    );
  });
});

describe("policy: every instance forwards IP", () => {
  it("accepts canIpForward: true", () => {
    assert.deepEqual(ipForwardViolations({ canIpForward: true }), []);
  });
  it("rejects false or missing", () => {
    assert.equal(ipForwardViolations({ canIpForward: false }).length, 1);
    assert.equal(ipForwardViolations({}).length, 1);
  });
});

describe("policy: docker providers only over ssh://", () => {
  it("accepts ssh://", () => {
    assert.deepEqual(dockerProviderViolations({ host: "ssh://core@198.51.100.7" }), []);
  });
  it("rejects tcp://, unix:// and the default local socket", () => {
    assert.match(dockerProviderViolations({ host: "tcp://10.0.0.1:2375" })[0]!, /not ssh:\/\//);
    assert.equal(dockerProviderViolations({ host: "unix:///var/run/docker.sock" }).length, 1);
    assert.match(dockerProviderViolations({})[0]!, /must set host/);
  });
});

describe("policy: workload endpoints stay confined", () => {
  const endpoint = (extra: Record<string, unknown> = {}) => ({
    labels: [
      { label: "calico-docker.role", value: "endpoint" },
      { label: "calico-docker.endpoint", value: "web-1" },
    ],
    networkMode: "none",
    privileged: false,
    ...extra,
  });
  it("accepts a plain --net=none endpoint and one with an allowed volume", () => {
    assert.deepEqual(workloadEndpointViolations(endpoint()), []);
    assert.deepEqual(
      workloadEndpointViolations(
        endpoint({ volumes: [{ hostPath: "/srv/calico-data/web", containerPath: "/data" }] }),
        ["/srv/calico-data"],
      ),
      [],
    );
  });
  it("leaves the system containers alone (felix needs the host's network and privileges)", () => {
    assert.deepEqual(
      workloadEndpointViolations({
        labels: [{ label: "calico-docker.role", value: "felix" }],
        privileged: true,
        networkMode: "host",
      }),
      [],
    );
  });
  it("refuses privileged, host network, host PID, added capabilities", () => {
    assert.match(
      workloadEndpointViolations(endpoint({ privileged: true })).join("\n"),
      /must not be privileged/,
    );
    assert.match(
      workloadEndpointViolations(endpoint({ networkMode: "host" })).join("\n"),
      /network mode none .*not "host"/,
    );
    assert.match(
      workloadEndpointViolations(endpoint({ networkMode: undefined })).join("\n"),
      /not "default"/,
    );
    assert.match(
      workloadEndpointViolations(endpoint({ pidMode: "host" })).join("\n"),
      /pidMode: host/,
    );
    assert.match(
      workloadEndpointViolations(endpoint({ capabilities: { adds: ["NET_ADMIN"] } })).join("\n"),
      /NET_ADMIN/,
    );
  });
  it("refuses host paths outside the allow-list, or any without one", () => {
    const vol = (hostPath: string) => endpoint({ volumes: [{ hostPath, containerPath: "/x" }] });
    assert.match(workloadEndpointViolations(vol("/srv/a")).join(), /no host path is allowed/);
    assert.match(
      workloadEndpointViolations(vol("/etc"), ["/srv/calico-data"]).join(),
      /binds host path \/etc, outside \/srv\/calico-data/,
    );
    assert.equal(
      workloadEndpointViolations(vol("/srv/calico-data2"), ["/srv/calico-data"]).length,
      1,
    );
    assert.equal(
      workloadEndpointViolations(vol("/srv/calico-data/../../etc"), ["/srv/calico-data"]).length,
      1,
    );
    assert.equal(
      workloadEndpointViolations(
        endpoint({ mounts: [{ type: "bind", source: "/", target: "/host" }] }),
        ["/srv/calico-data"],
      ).length,
      1,
      "bind mounts count too",
    );
  });
});
