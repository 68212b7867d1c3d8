/**
 * The checks and errors shared by the data file's parsers: names, addresses, the problem
 * an operator is shown, and how a value from a file is quoted in it. Everything here is pure.
 */

/** A problem found in the data, precise enough for an operator to fix it. */
export interface Problem {
  readonly file: string;
  readonly line?: number;
  readonly section?: string;
  readonly field?: string;
  readonly value?: string;
  readonly message: string;
}

const NAME_RE = /^[A-Za-z0-9][-_A-Za-z0-9.]*$/;
const MAX_NAME = 253;

/** Problem messages quote values; a long one is cut. */
export function clip(message: string): string {
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

/** A short, printable preview of text from a data file, for problems and logs. */
export function preview(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is replaced
  const printable = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return printable.length > 80 ? `${printable.slice(0, 80)}...` : printable;
}

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME && NAME_RE.test(name);
}

/** Strict dotted-quad IPv4: four decimal octets 0-255, no leading zeros. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function isCidrV4(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash < 0) return false;
  const prefix = text.slice(slash + 1);
  return isIPv4(text.slice(0, slash)) && /^(0|[1-9][0-9]?)$/.test(prefix) && Number(prefix) <= 32;
}

/** A section's field that fails validation: the section is skipped, the field named. */
export class SectionError extends Error {
  constructor(
    readonly field: string,
    readonly value: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export function checkName(field: string, value: string): string {
  if (!isValidName(value)) {
    throw new SectionError(
      field,
      value,
      `invalid name ${JSON.stringify(value)}: expected letters, digits, '-', '_' or '.', starting with a letter or digit`,
    );
  }
  return value;
}

export function checkIPv4(field: string, value: string): string {
  if (!isIPv4(value)) {
    throw new SectionError(field, value, `invalid IPv4 address ${JSON.stringify(value)}`);
  }
  return value;
}

export function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text;
}
