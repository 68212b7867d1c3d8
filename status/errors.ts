/** The operator's error: status could not run (a bad option, no outputs, no key). Exit 2. */
export class StatusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StatusError";
  }
}
