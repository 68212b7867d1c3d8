/**
 * The image build run on a host: a base64 tar build context on stdin, `docker build -`,
 * then the image's id on the last line. Pure.
 */
import { shQuote } from "./text.js";

/** The shell text that builds `ref` from a base64 tar context on stdin, then prints its id. */
export function imageBuildScript(ref: string, dockerfile: string): string {
  return [
    "set -eu",
    "ctx=$(mktemp -d)",
    "trap 'rm -rf \"$ctx\"' EXIT",
    'base64 -d > "$ctx/context.tar"',
    `docker build -t ${shQuote(ref)} -f ${shQuote(dockerfile)} - < "$ctx/context.tar" >&2`,
    `docker image inspect -f '{{.Id}}' ${shQuote(ref)}`,
  ].join("\n");
}
