/**
 * Reading a file the operator names (`--outputs`, `--key`): only a regular file, and only up to
 * a bound. The file is opened without blocking (a FIFO with no writer would wait forever) and
 * its kind is taken from the open descriptor, so what is checked is what is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { StatusError } from "./errors.js";

/** The bound on a file status reads: far above any stack's outputs, far below trouble. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

function kindOf(mode: number): string {
  const type = mode & constants.S_IFMT;
  if (type === constants.S_IFIFO) return "a FIFO";
  if (type === constants.S_IFCHR) return "a character device";
  if (type === constants.S_IFBLK) return "a block device";
  if (type === constants.S_IFSOCK) return "a socket";
  if (type === constants.S_IFDIR) return "a directory";
  return "not a regular file";
}

/** The text of a regular file of at most maxBytes; anything else is a StatusError naming it. */
export function readRegularFile(file: string, option: string, maxBytes = MAX_INPUT_BYTES): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new StatusError(`${option} ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new StatusError(
        `${option} ${file}: ${kindOf(st.mode)}, not a regular file (refused: it could block or never end)`,
      );
    }
    if (st.size > maxBytes) {
      throw new StatusError(
        `${option} ${file}: ${st.size} bytes, more than the ${maxBytes} status reads (refused)`,
      );
    }
    // Read at most one byte past the bound: a file that grew since fstat is refused too.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) {
      got = readSync(fd, buf, n, buf.length - n, null);
    }
    if (n > maxBytes) {
      throw new StatusError(
        `${option} ${file}: more than the ${maxBytes} bytes status reads (refused)`,
      );
    }
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
