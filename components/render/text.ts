/**
 * Small text helpers shared by the renderers: shell quoting, INI sections, endpoint id
 * checks, banners. Pure.
 */

/** A problem with the arguments of a render function (not with the stack config). */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RenderError";
  }
}

/**
 * Quote a value for bash as one word: `'...'` with embedded quotes closed and escaped.
 * Every value the scripts get is validated first; quoting is the second line of defence.
 */
export function shQuote(value: string): string {
  if (/[\0\n\r]/.test(value)) {
    throw new RenderError(`value ${JSON.stringify(value)} holds a NUL or a line break`);
  }
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** `NAME='value'` lines for the top of a script; names are checked, values quoted. */
export function shAssignments(vars: ReadonlyArray<readonly [string, string]>): string {
  return vars
    .map(([name, value]) => {
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new RenderError(`bad variable name ${name}`);
      return `${name}=${shQuote(value)}`;
    })
    .join("\n");
}

/** One INI section: `[header]` then `key = value` lines (values must be one line). */
export function iniSection(
  header: string,
  entries: ReadonlyArray<readonly [string, string | number]>,
  sep = " = ",
): string {
  const lines = [`[${header}]`];
  for (const [key, value] of entries) {
    const text = String(value);
    if (/[\n\r]/.test(text) || /[\n\r]/.test(key)) {
      throw new RenderError(`INI value of ${key} in [${header}] spans lines`);
    }
    lines.push(`${key}${sep}${text}`);
  }
  return lines.join("\n") + "\n";
}

/** A docker container id: 64 lowercase hex characters (what the plugin accepts). */
export const ENDPOINT_ID_RE = /^[0-9a-f]{64}$/;

export function checkEndpointId(endpointName: string, endpointId: string): string {
  if (!ENDPOINT_ID_RE.test(endpointId)) {
    throw new RenderError(
      `endpoint id for ${endpointName} must be 64 lowercase hex characters (a docker ` +
        `container id), got ${JSON.stringify(endpointId)}`,
    );
  }
  return endpointId;
}

/** The header comment every rendered file starts with (`#` or `;` style). */
export function banner(what: string, comment = "#"): string {
  return `${comment} ${what}\n${comment} Rendered from the stack config by calico-docker; do not edit by hand.\n`;
}
