/**
 * The ARP (neighbour) table is one per kernel, shared by every network namespace, and its
 * limits (net.ipv4.neigh.default.gc_thresh2/3, 512/1024 by default) count the entries of all
 * of them. In production each host has its own kernel; in the lab all hosts and endpoints
 * share this one, and every endpoint ARPs for every address it talks to (its default route
 * is `dev eth0`, proxy ARP answers), so a full ping matrix of E endpoints needs about
 * 2·E·(E-1) entries at once. Past the limit the kernel drops the ARP ("neighbor table
 * overflow") and pings fail. `up` raises the limits when the lab needs it, records the old
 * values, and `down` puts them back.
 */
import { readFileSync, writeFileSync } from "node:fs";

type Key = "gc_thresh2" | "gc_thresh3";
const path = (k: Key) => `/proc/sys/net/ipv4/neigh/default/${k}`;
const CAP = 1_048_576;

export interface NeighbourRecord {
  /** Values before `up` changed them. */
  from: Record<Key, number>;
  /** Values `up` set. */
  to: Record<Key, number>;
}

function read(k: Key): number {
  return Number(readFileSync(path(k), "utf8").trim());
}

/**
 * Entries a full matrix of `endpoints` holds at its peak: each endpoint keeps one for every
 * source that pinged it (the matrix flushes a source's own entries when it is done with it),
 * plus the sources in flight, plus the hosts.
 */
export function neighbourEntriesNeeded(endpoints: number, hosts: number): number {
  return endpoints * Math.max(0, endpoints - 1) + 32 * endpoints + 8 * hosts + 256;
}

/** Raise the kernel's neighbour table limits if the lab needs more; undefined if not. */
export function ensureNeighbourCapacity(
  endpoints: number,
  hosts: number,
): NeighbourRecord | undefined {
  const need = neighbourEntriesNeeded(endpoints, hosts);
  const from = { gc_thresh2: read("gc_thresh2"), gc_thresh3: read("gc_thresh3") };
  if (need <= from.gc_thresh2) return undefined;
  // Above gc_thresh2 the kernel runs a forced GC on allocations; with many fresh entries it
  // cannot finish within its 1 ms budget and then runs on EVERY allocation (measured: a
  // 500-endpoint matrix took 4x longer, mostly in the kernel). So both limits go above the
  // peak, a power of two with a quarter spare, capped (~0.5 KB per entry).
  const limit = Math.min(CAP, 2 ** Math.ceil(Math.log2(need * 1.25)));
  const to = {
    gc_thresh2: Math.max(from.gc_thresh2, limit),
    gc_thresh3: Math.max(from.gc_thresh3, limit),
  };
  writeFileSync(path("gc_thresh3"), String(to.gc_thresh3));
  writeFileSync(path("gc_thresh2"), String(to.gc_thresh2));
  return { from, to };
}

/**
 * Put the limits back, unless someone changed them since (then they are theirs) or another
 * lab still needs them (`othersUp`). Returns what it did, for the log.
 */
export function restoreNeighbourCapacity(rec: NeighbourRecord, othersUp: boolean): string {
  const now = { gc_thresh2: read("gc_thresh2"), gc_thresh3: read("gc_thresh3") };
  if (now.gc_thresh3 !== rec.to.gc_thresh3 || now.gc_thresh2 !== rec.to.gc_thresh2) {
    return `neighbour table limits changed since up (now ${now.gc_thresh2}/${now.gc_thresh3}): left as they are`;
  }
  if (othersUp) {
    return `another lab is up: neighbour table limits stay at ${now.gc_thresh2}/${now.gc_thresh3}`;
  }
  // thresh2 first: the kernel wants thresh2 <= thresh3 at every step.
  writeFileSync(path("gc_thresh2"), String(rec.from.gc_thresh2));
  writeFileSync(path("gc_thresh3"), String(rec.from.gc_thresh3));
  return `neighbour table limits back to gc_thresh2=${rec.from.gc_thresh2} gc_thresh3=${rec.from.gc_thresh3}`;
}
