// Entry point of one capture run (see ../registered-resources.ts): a fresh Node process that loads the project's
// TypeScript the way Pulumi's Node.js runtime loads a TypeScript program (its vendored ts-node with the project's
// typescript and tsconfig.json), so the real classes, dynamic resources included, register under Pulumi mocks.
// Vitest cannot do this in-process: its module system hides closures from Pulumi's function serializer, which
// every `pulumi.dynamic.Resource` runs on its provider.
//
// Usage: node run-capture.cjs <request.json> <result.json>
"use strict";
const path = require("path");

const root = path.resolve(__dirname, "..", "..", "..");
const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [root] }));
const tsNode = require(path.join(pulumiDir, "vendor", "ts-node@7.0.1"));
tsNode.register({
    compiler: require.resolve("typescript", { paths: [root] }),
    project: path.join(root, "tsconfig.json"),
    // The program is type-checked by `npm run typecheck`; here only transpiled, which keeps a run to seconds.
    transpileOnly: true,
    compilerOptions: { module: "commonjs", moduleResolution: "node", sourceMap: true },
});
require("./capture-child.ts");
