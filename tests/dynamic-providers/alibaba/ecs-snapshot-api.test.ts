// Our typed snapshot calls (ecs-snapshot-api.ts) through the real signed client (client.ts) against the fake
// Alibaba API server, which accepts only the parameters of the SDK's request models.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAlibabaApiClient, isAlibabaApiError } from "../../../dynamic-providers/alibaba/client";
import { EcsSnapshotApi, ecsSnapshotApi, snapshotNameProblem } from "../../../dynamic-providers/alibaba/ecs-snapshot-api";
import { AlibabaApiServer, startAlibabaApiServer } from "../../servers/alibaba-api-server";

const ACCESS_KEY_ID = "test-ak-ecs-snapshots";
const ACCESS_KEY_SECRET = "ecs-snapshots-test-secret-0123456789";

let server: AlibabaApiServer;
let api: EcsSnapshotApi;

beforeAll(async () => {
    // The client reads the default credential chain when it is built; the test process is its own (forks pool).
    process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = ACCESS_KEY_ID;
    process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = ACCESS_KEY_SECRET;
    process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true";
    server = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET });
    api = ecsSnapshotApi(createAlibabaApiClient({ endpoint: server.url }));
});

afterAll(async () => {
    await server?.close();
});

describe("ECS snapshots", () => {
    it("creates a snapshot of the disk and lists it progressing, then accomplished", async () => {
        server.addDisk("d-bp1snapshotapi", { snapshotMs: 200 });
        const mark = server.mark();
        const { snapshotId } = await api.createSnapshot({
            diskId: "d-bp1snapshotapi",
            snapshotName: "dify-before-1.14.1-20261130120000",
            description: "before the upgrade",
            retentionDays: 7,
            clientToken: "dify-token-1",
        });
        const [first] = await api.describeSnapshots({ regionId: "cn-hangzhou", snapshotIds: [snapshotId] });
        expect(first).toMatchObject({ snapshotId, status: "progressing", sourceDiskId: "d-bp1snapshotapi", retentionDays: 7 });
        await new Promise((resolve) => setTimeout(resolve, 250));
        const [done] = await api.describeSnapshots({ regionId: "cn-hangzhou", snapshotIds: [snapshotId] });
        expect(done).toMatchObject({ status: "accomplished", progress: "100%", snapshotName: "dify-before-1.14.1-20261130120000" });
        expect(server.calls.slice(mark).map((call) => call.parameters)).toEqual([
            ["ClientToken", "Description", "DiskId", "RetentionDays", "SnapshotName"],
            ["RegionId", "SnapshotIds"],
            ["RegionId", "SnapshotIds"],
        ]);
    });

    it("answers InvalidDiskId.NotFound for an unknown disk, and refuses a bad name before sending anything", async () => {
        const error = await api.createSnapshot({ diskId: "d-unknown", snapshotName: "dify-check" }).catch((err: unknown) => err);
        expect(isAlibabaApiError(error) && error.code).toBe("InvalidDiskId.NotFound");
        const mark = server.mark();
        await expect(api.createSnapshot({ diskId: "d-bp1snapshotapi", snapshotName: "auto-upgrade" })).rejects.toThrow(/must start with a letter, and not with "auto"/);
        expect(server.countSince(mark).total).toBe(0);
        expect(snapshotNameProblem("dify-before-1.10.1-fix.1-20261130120000")).toBeUndefined();
        expect(snapshotNameProblem("1.14.1")).toBeDefined();
    });
});
