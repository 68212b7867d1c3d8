/**
 * The INI layer of a data file: its text split into sections of `key=value` lines.
 * Liberal (comments, blank lines, spaces around `=`, quoted values); a line that is neither
 * a key nor a section header, or a damaged header, makes the whole file unusable.
 * Everything here is pure.
 */
import { isValidName, preview, type Problem } from "./fields.js";

const KIND_RE = /^[a-z][a-z0-9_-]*$/;
/** The section kinds the plugin knows. */
export const KINDS = new Set(["felix", "endpoint", "group"]);

export interface RawSection {
  readonly header: string;
  readonly kind: string;
  readonly name: string;
  readonly line: number;
  readonly values: Map<string, { value: string; line: number }>;
}

function unquote(value: string): string {
  if (value.length >= 2) {
    const first = value[0];
    if ((first === '"' || first === "'") && value.endsWith(first)) return value.slice(1, -1);
  }
  return value;
}

export type Sectioned =
  { ok: true; sections: RawSection[]; problems: Problem[] } | { ok: false; problems: Problem[] };

export function splitSections(file: string, text: string): Sectioned {
  const problems: Problem[] = [];
  const sections: RawSection[] = [];
  let current: RawSection | null = null;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      if (!line.endsWith("]")) {
        return {
          ok: false,
          problems: [
            { file, line: lineNo, value: preview(line), message: "unterminated section header" },
          ],
        };
      }
      const header = line.slice(1, -1).trim();
      const words = header.split(/\s+/);
      const kind = (words[0] ?? "").toLowerCase();
      const name = words.slice(1).join(" ");
      // A damaged header cannot say which section it was: the whole file is not used (its
      // last good content stays in force), rather than its section vanishing.
      const damaged = !KIND_RE.test(kind)
        ? `damaged section header: kind ${JSON.stringify(preview(kind))} is not a word`
        : KINDS.has(kind) && !isValidName(name)
          ? `damaged section header: ${JSON.stringify(preview(name))} is not a valid ${kind} name`
          : null;
      if (damaged !== null) {
        return {
          ok: false,
          problems: [{ file, line: lineNo, value: preview(line), message: damaged }],
        };
      }
      current = { header, kind, name, line: lineNo, values: new Map() };
      sections.push(current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) {
      return {
        ok: false,
        problems: [
          {
            file,
            line: lineNo,
            value: preview(line),
            message: "expected `key=value` or `[section]`",
          },
        ],
      };
    }
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = unquote(line.slice(eq + 1).trim());
    if (current === null) {
      problems.push({
        file,
        line: lineNo,
        field: key,
        message: "key outside any section, ignored",
      });
      continue;
    }
    if (current.values.has(key)) {
      problems.push({
        file,
        line: lineNo,
        section: preview(current.header),
        field: key,
        message: "duplicate key, the last one wins",
      });
    }
    current.values.set(key, { value, line: lineNo });
  }
  return { ok: true, sections, problems };
}
