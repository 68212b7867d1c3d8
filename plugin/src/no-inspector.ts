/**
 * SIGUSR1 would open Node's inspector (a debugger on 127.0.0.1:9229) in the plugin: any
 * local process allowed to signal it could then run code in a root, host-network process.
 * The plugin is started with `--disable-sigusr1` where Node has it (the image); and, for a
 * start without it (Node 20 has no such flag), a listener of our own takes the signal
 * instead: while one is installed, Node does not open the inspector on SIGUSR1.
 *
 * Imported first by the CLI, so that the listener is there before anything else loads.
 */
let report: (() => void) | null = null;

process.on("SIGUSR1", () => report?.());

/** Called at every SIGUSR1 refused (to log it). */
export function onInspectorSignal(fn: () => void): void {
  report = fn;
}
