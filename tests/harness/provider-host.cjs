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

// The real host answers the engine through protobuf Structs (google-protobuf's Struct.fromJavaScript), which
// throws on values JSON would quietly drop, such as undefined. Results go through the same conversion here.
const { Struct } = require(require.resolve("google-protobuf/google/protobuf/struct_pb", {
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

/** The property bags the host sends to the engine (outs, props, inputs) as the engine would receive them. */
function throughStructs(result) {
    const converted = { ...result };
    for (const key of ["outs", "props", "inputs"]) {
        if (converted[key] !== undefined && converted[key] !== null) {
            converted[key] = Struct.fromJavaScript(converted[key]).toJavaScript();
        }
    }
    return JSON.parse(JSON.stringify(converted));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
    const request = JSON.parse(line);
    let answer;
    try {
        const method = provider[request.method];
        let result;
        if (typeof method === "function") {
            result = await method.apply(provider, request.args);
        } else if (request.method === "read") {
            // Pulumi's host answers a read the provider does not implement with the state unchanged.
            const [id, props] = request.args;
            result = { id, props };
        } else {
            throw new Error(`provider has no method ${request.method}`);
        }
        answer = { id: request.id, result: result === undefined ? null : throughStructs(result) };
    } catch (err) {
        answer = { id: request.id, error: errorToJson(err) };
    }
    process.stdout.write(RESPONSE_MARKER + JSON.stringify(answer) + "\n");
});
rl.on("close", () => process.exit(0));
