/**
 * Reads the BGP part of a rendered bird.conf as BIRD 1.x does: `template bgp <t> { … }`
 * blocks, and `protocol bgp <name> [from <t>] { … }` blocks whose settings are the
 * template's followed by their own (a later line overrides an earlier one in BIRD).
 */
import assert from "node:assert/strict";

export interface BgpBlock {
  name: string;
  /** The template named by `from`, if any. */
  from: string | undefined;
  /** The block's own lines. */
  own: string;
  /** The template's lines, then the block's own: what BIRD configures for the session. */
  body: string;
  neighbor: string | undefined;
  source: string | undefined;
  rrClient: boolean;
}

export function bgpTemplates(conf: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of conf.matchAll(/^template bgp (\S+) \{\n([\s\S]*?)^\}/gm)) {
    assert.ok(!out.has(m[1]!), `template ${m[1]} defined twice`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

export function bgpBlocks(conf: string): BgpBlock[] {
  const templates = bgpTemplates(conf);
  return [...conf.matchAll(/^protocol bgp (\S+)(?: from (\S+))? \{\n([\s\S]*?)^\}/gm)].map((m) => {
    const from = m[2];
    let inherited = "";
    if (from !== undefined) {
      assert.ok(templates.has(from), `protocol ${m[1]} names an undefined template ${from}`);
      inherited = templates.get(from)!;
    }
    const body = inherited + m[3]!;
    return {
      name: m[1]!,
      from,
      own: m[3]!,
      body,
      neighbor: /neighbor (\S+) as/.exec(body)?.[1],
      source: /source address (\S+);/.exec(body)?.[1],
      rrClient: /rr client;/.test(body),
    };
  });
}
