// A stand-in for Pulumi's dynamic provider host (@pulumi/pulumi/cmd/dynamic-provider): a fresh Node process
// that turns the serialized text back into the provider with the same `require-from-string` call, then runs
// the provider's methods on request. Requests arrive as JSON lines on stdin; answers go to stdout as lines
// prefixed with RESPONSE_MARKER so anything the provider itself prints is kept apart (tests inspect it).
"use strict";
const fs = require("fs");
const readline = require("readline");

const RESPONSE_MARKER = "@@provider-host@@";
// Resolve require-from-string from @pulumi/pulumi's own dependency tree, as the real host does.
const requireFromString = require(require.resolve("require-from-string", {
    paths: [require.resolve("@pulumi/pulumi")],
}));

const providerText = fs.readFileSync(process.argv[2], "utf8");
const provider = requireFromString(providerText).handler();

function errorToJson(err) {
    if (!(err instanceof Error)) {
        return { name: "NonError", message: String(err) };
    }
    return { name: err.name, message: err.message };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
    const request = JSON.parse(line);
    let answer;
    try {
        const method = provider[request.method];
        if (typeof method !== "function") {
            throw new Error(`provider has no method ${request.method}`);
        }
        const result = await method.apply(provider, request.args);
        // The engine carries results through protobuf Structs: JSON round-trip drops undefined the same way.
        answer = { id: request.id, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) };
    } catch (err) {
        answer = { id: request.id, error: errorToJson(err) };
    }
    process.stdout.write(RESPONSE_MARKER + JSON.stringify(answer) + "\n");
});
rl.on("close", () => process.exit(0));
