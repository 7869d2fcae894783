// The data disk as DifyHost declares it (encrypted, protected, snapshotted daily) and the instance's metadata
// mode, under Pulumi mocks. Resource options (protect, ignoreChanges) are read through a transformation on the
// component, which its children inherit.
import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { RegisteredResource, installMocks, settle, valueOf } from "./pulumi-mocks";
import { DifyHost, DifyHostSettings } from "../../components/dify-host";
import { buildHostRecordingOptions, hostArgsWith } from "./host-args";

vi.mock("../../dynamic-providers/dify/readiness", () => import("./dynamic-stubs"));
vi.mock("../../dynamic-providers/dify/instance-configuration", () => import("./dynamic-stubs"));

const KMS_KEY = "key-hzz62f1cb66fa42qo9abc";
let registered: RegisteredResource[];
const options = new Map<string, pulumi.CustomResourceOptions>();
const warn = vi.spyOn(pulumi.log, "warn");
const warnings = new Map<string, string[]>();

/** Builds a host named `name` with `settings` over the base ones, and waits for its resources and warnings. */
async function host(name: string, settings: Partial<DifyHostSettings> = {}): Promise<DifyHost> {
    const before = warn.mock.calls.length;
    const built = await buildHostRecordingOptions(name, hostArgsWith(settings), options);
    warnings.set(name, warn.mock.calls.slice(before).map((call) => String(call[0])));
    return built;
}

function resource(name: string): RegisteredResource {
    const found = registered.filter((r) => r.name === name);
    expect(found, name).toHaveLength(1);
    return found[0];
}

beforeAll(async () => {
    warn.mockImplementation(() => Promise.resolve());
    registered = installMocks({
        state: {
            // Stacks whose disk predates encryption, or was encrypted with another key.
            "kept-data": { encrypted: false, kmsKeyId: "" },
            "otherkey-data": { encrypted: true, kmsKeyId: "key-hzzothersomethingelse" },
        },
    });
    await host("dify");
    await host("custom", { dataDiskKmsKeyId: KMS_KEY, dataDiskSnapshotRetentionDays: 30, requireMetadataTokens: false });
    await host("optout", { protectDataDisk: false, encryptDataDisk: false, dataDiskSnapshotRetentionDays: 0 });
    await host("kept");
    await host("acknowledged", { encryptDataDisk: false });
    await host("otherkey", { dataDiskKmsKeyId: KMS_KEY });
});

describe("the data disk, by default", () => {
    it("is encrypted with the region's default key when created", () => {
        const disk = resource("dify-data").inputs;
        expect(disk.encrypted).toBe(true);
        expect(disk.kmsKeyId).toBeUndefined();
        expect(disk.deleteWithInstance).toBe(false);
        expect(resource("custom-data").inputs.kmsKeyId).toBe(KMS_KEY);
    });

    it("is protected, and never re-created for its encryption settings", () => {
        expect(options.get("dify-data")?.protect).toBe(true);
        expect(options.get("dify-data")?.ignoreChanges).toEqual(["encrypted", "kmsKeyId"]);
        // Nothing else is protected: destroy stops only at the data.
        const others = [...options.entries()].filter(([name]) => name.startsWith("dify-") && name !== "dify-data");
        expect(others.length).toBeGreaterThan(3);
        for (const [name, opts] of others) {
            expect(opts.protect ?? false, name).toBe(false);
        }
    });

    it("is snapshotted every day, keeping 7 days", () => {
        const policy = resource("dify-snapshots").inputs;
        expect(policy).toMatchObject({ autoSnapshotPolicyName: "dify-test-data-daily", retentionDays: 7, timePoints: ["3"] });
        expect(policy.repeatWeekdays).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
        expect(resource("dify-snapshots-data").inputs).toEqual({ autoSnapshotPolicyId: "dify-snapshots-id", diskId: "d-bp1mockdatadisk" });
        expect(resource("custom-snapshots").inputs.retentionDays).toBe(30);
    });

    it("warns about nothing on a new stack", () => {
        expect(warnings.get("dify")).toEqual([]);
        expect(warnings.get("custom")).toEqual([]);
    });
});

describe("the instance's metadata", () => {
    it("answers only with a session token (security hardening mode)", () => {
        const instance = resource("dify-instance").inputs;
        expect(instance.httpTokens).toBe("required");
        expect(instance.httpEndpoint).toBe("enabled");
    });

    it("takes plain requests again when requireMetadataTokens is false", () => {
        expect(resource("custom-instance").inputs.httpTokens).toBe("optional");
    });
});

describe("turning it off, and stacks that already have a disk", () => {
    it("can be turned off: no protection, no encryption, no snapshot policy", () => {
        expect(options.get("optout-data")?.protect).toBe(false);
        expect(resource("optout-data").inputs.encrypted).toBe(false);
        expect(registered.some((r) => r.name.startsWith("optout-snapshots"))).toBe(false);
        expect(warnings.get("optout")).toEqual([]);
    });

    it("keeps an existing unencrypted disk and says so until encryptDataDisk is false", () => {
        expect(options.get("kept-data")?.ignoreChanges).toEqual(["encrypted", "kmsKeyId"]);
        const [warning, ...rest] = warnings.get("kept") ?? [];
        expect(rest).toEqual([]);
        expect(warning).toMatch(/^The data disk d-bp1mockdatadisk is not encrypted\. It is kept as it is: encryption is fixed when a disk is created, and a new disk would be empty\./);
        expect(warning).toContain("set dify-mcp-stack:encryptDataDisk to false");
        expect(warnings.get("acknowledged")).toEqual([]);
    });

    it("keeps a disk encrypted with another key, and says so", () => {
        expect(warnings.get("otherkey")).toEqual([
            `The data disk d-bp1mockdatadisk is encrypted with the KMS key key-hzzothersomethingelse, not dify-mcp-stack:dataDiskKmsKeyId ${KMS_KEY}. It is kept as it is: the key is fixed when a disk is created, and a new disk would be empty.`,
        ]);
    });
});
