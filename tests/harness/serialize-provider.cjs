// Serializes a dynamic provider exactly as `pulumi.dynamic.Resource` does when it registers a resource:
// `serializeFunction(() => provider, { allowSecrets: true })` over the compiled CommonJS module.
// Usage: node serialize-provider.cjs <compiled-module.js> <exportName>
"use strict";
const path = require("path");
const pulumi = require("@pulumi/pulumi");

async function main() {
    const [modulePath, exportName] = process.argv.slice(2);
    const mod = require(path.resolve(modulePath));
    const provider = mod[exportName];
    if (!provider) {
        throw new Error(`${modulePath} has no export named ${exportName}`);
    }
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    process.stdout.write(serialized.text);
}

main().catch((err) => {
    process.stderr.write(String(err && err.stack ? err.stack : err));
    process.exit(1);
});
