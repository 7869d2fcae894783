import { describe, expect, it } from "vitest";
import { useDifyProviderHost } from "../../servers/dify-provider-fixture";
import { startSetupProbeServer } from "../../servers/setup-probe-server";
import { DifyReadinessInputs, checkDifyReadiness, diffDifyReadiness } from "../../../dynamic-providers/dify/readiness";

const provider = useDifyProviderHost<DifyReadinessInputs>("readiness", "difyReadinessProvider");

function inputs(url: string, overrides: Partial<DifyReadinessInputs> = {}): DifyReadinessInputs {
    return { difyUrl: url, instanceId: "i-bp1example", timeoutSeconds: 5, pollIntervalSeconds: 0.02, ...overrides };
}

describe("DifyReadiness under the engine's serialization", () => {
    it("waits through 502s until Dify answers, and records the version it reports", async () => {
        const server = await startSetupProbeServer({ failuresBeforeReady: 3, version: "1.14.1" });
        try {
            const result = await provider.call<{ id: string; outs: Record<string, unknown> }>("create", inputs(server.url));
            expect(result.outs).toMatchObject({ setupStep: "not_started", difyVersion: "1.14.1", difyUrl: server.url });
            expect(server.probes()).toBe(4);
        } finally {
            await server.close();
        }
    });

    it("fails after the timeout saying what it last saw and where the log is", async () => {
        const server = await startSetupProbeServer({ failuresBeforeReady: 1_000_000 });
        try {
            await expect(provider.call("create", inputs(server.url, { timeoutSeconds: 1, pollIntervalSeconds: 0.05 }))).rejects.toThrow(
                /did not answer GET \/console\/api\/setup within 1s; last seen: .*HTTP 502.*Bad Gateway.*dify-bootstrap\.log/s,
            );
        } finally {
            await server.close();
        }
    });

    it("reports a refused connection as the last thing seen", async () => {
        await expect(
            provider.call("create", inputs("http://127.0.0.1:9", { timeoutSeconds: 1, pollIntervalSeconds: 0.1 })),
        ).rejects.toThrow(/last seen: .*ECONNREFUSED/);
    });

    it("rejects bad inputs at check time, naming the field", async () => {
        const result = await provider.call<{ failures: Array<{ property: string }> }>("check", {}, { ...inputs("ftp://x"), timeoutSeconds: 0 });
        expect(result.failures.map((f) => f.property).sort()).toEqual(["difyUrl", "timeoutSeconds"]);
    });
});

describe("diffDifyReadiness", () => {
    const olds = { ...inputs("http://198.51.100.23"), setupStep: "not_started", difyVersion: "1.14.1" };

    it("is empty when nothing changed", () => {
        expect(diffDifyReadiness(olds, inputs("http://198.51.100.23"))).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("waits again for a new instance", () => {
        expect(diffDifyReadiness(olds, inputs("http://198.51.100.23", { instanceId: "i-new" })).replaces).toEqual(["instanceId"]);
    });

    it("updates the timeout in place", () => {
        const diff = diffDifyReadiness(olds, inputs("http://198.51.100.23", { timeoutSeconds: 60 }));
        expect(diff).toMatchObject({ changes: true, replaces: [] });
    });

    it("accepts good inputs", () => {
        expect(checkDifyReadiness(inputs("http://198.51.100.23"))).toEqual([]);
    });
});
