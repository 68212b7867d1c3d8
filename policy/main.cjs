// The entry point Pulumi's policy runner loads (package.json "main").
//
// The runner (@pulumi/pulumi/cmd/run-policy-pack) require()s the pack with its own ts-node
// registered, whatever PulumiPolicy.yaml says (`typescript: false` and `nodeargs` are not
// honoured for policy packs, pulumi/pulumi#4830), and ts-node cannot load a pack written as
// ES modules in TypeScript: the pack's `import "./rules.js"` fails. So this entry is plain
// CommonJS, which ts-node leaves alone. It registers tsx's ESM hooks (the loader the program
// itself runs under) and imports the TypeScript pack. The runner awaits the exported
// promise, so a pack that fails to load fails the run.
//
// tsx's API is imported rather than required: the CommonJS build of its register() (tsx
// 4.23) looks for its hooks in the wrong folder.
"use strict";

module.exports = import("tsx/esm/api").then(({ register }) => {
  register();
  return import("./index.ts");
});
