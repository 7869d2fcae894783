// Typed calls of ECS disk snapshots (product Ecs, version 2014-05-26, RPC style): CreateSnapshot and
// DescribeSnapshots, named as Alibaba's official SDK names them (Python alibabacloud-ecs20140526 7.11.8,
// `create_snapshot_with_options` / `describe_snapshots_with_options`). Only parameters those request models
// define are sent, all in the query (POST "/"); signing, retries and errors are `AlibabaApiClient`'s (client.ts).
//
// RAM actions needed: ecs:CreateSnapshot (on the disk) and ecs:DescribeSnapshots.
import { AlibabaApiClient, QueryValue } from "./client";
import { ECS_VERSION } from "./cloud-assistant-api";

/**
 * `Status` of a snapshot (DescribeSnapshots): "progressing: The snapshot is being created. accomplished: The snapshot
 * is successfully created. failed: The snapshot failed to be created." Other values pass through as they come.
 */
export type SnapshotStatus = "progressing" | "accomplished" | "failed";

export interface CreateSnapshotParams {
    /** The disk ("d-…"); it must be In Use or Available, and attached to an instance before. */
    diskId: string;
    /** 2–128 characters, starting with a letter; not starting with "auto", "http://" or "https://". */
    snapshotName: string;
    /** 2–256 characters, not starting with "http://" or "https://". */
    description?: string;
    /** 1–65536: the snapshot is released that many days later. Unset: kept until deleted. */
    retentionDays?: number;
    /** Idempotency token, at most 64 ASCII characters: a retried request does not make a second snapshot. */
    clientToken?: string;
}

/** One snapshot as DescribeSnapshots lists it (the fields the providers use). */
export interface SnapshotInfo {
    snapshotId: string;
    snapshotName?: string;
    status: string;
    /** e.g. "100%". */
    progress?: string;
    sourceDiskId?: string;
    retentionDays?: number;
    creationTime?: string;
}

interface CreateSnapshotResponse {
    SnapshotId?: string;
}

interface DescribeSnapshotsResponse {
    Snapshots?: {
        Snapshot?: {
            SnapshotId?: string;
            SnapshotName?: string;
            Status?: string;
            Progress?: string;
            SourceDiskId?: string;
            RetentionDays?: number;
            CreationTime?: string;
        }[];
    };
}

/** The snapshot name's rules (CreateSnapshotRequest.snapshot_name), checked before anything is sent. */
export function snapshotNameProblem(name: string): string | undefined {
    if (name.length < 2 || name.length > 128) {
        return "must be 2 to 128 characters long";
    }
    if (!/^\p{L}/u.test(name) || /^(auto|https?:\/\/)/i.test(name)) {
        return 'must start with a letter, and not with "auto", "http://" or "https://"';
    }
    if (!/^[\p{L}0-9:_.-]+$/u.test(name)) {
        return "may contain letters, digits, colons, underscores, periods and hyphens only";
    }
    return undefined;
}

/** Snapshot calls bound to one client (whose endpoint is the region's ECS endpoint, `ecsEndpoint(regionId)`). */
export function ecsSnapshotApi(client: AlibabaApiClient) {
    const rpc = <T>(action: string, query: Record<string, QueryValue>) =>
        client.call<T>({ product: "Ecs", action, version: ECS_VERSION, style: "RPC", method: "POST", pathname: "/", query });
    return {
        /** CreateSnapshot: starts a snapshot of the disk (the request model has no RegionId: the endpoint's region). */
        createSnapshot: async (params: CreateSnapshotParams): Promise<{ snapshotId: string }> => {
            const problem = snapshotNameProblem(params.snapshotName);
            if (problem !== undefined) {
                throw new Error(`snapshot name ${JSON.stringify(params.snapshotName)} ${problem}`);
            }
            const body = (
                await rpc<CreateSnapshotResponse>("CreateSnapshot", {
                    DiskId: params.diskId,
                    SnapshotName: params.snapshotName,
                    Description: params.description,
                    RetentionDays: params.retentionDays,
                    ClientToken: params.clientToken,
                })
            ).body;
            if (!body.SnapshotId) {
                throw new Error(`CreateSnapshot answered without SnapshotId (${JSON.stringify(body)})`);
            }
            return { snapshotId: body.SnapshotId };
        },

        /** DescribeSnapshots of the given ids (at most 100), sent as the JSON array the SDK's `SnapshotIds` takes. */
        describeSnapshots: async (params: { regionId: string; snapshotIds: readonly string[] }): Promise<SnapshotInfo[]> => {
            if (params.snapshotIds.length === 0 || params.snapshotIds.length > 100) {
                throw new Error(`describeSnapshots takes 1 to 100 snapshot ids, got ${params.snapshotIds.length}`);
            }
            const body = (
                await rpc<DescribeSnapshotsResponse>("DescribeSnapshots", {
                    RegionId: params.regionId,
                    SnapshotIds: JSON.stringify(params.snapshotIds),
                    // MaxResults (default 10, at most 100) pages the answer: only beyond 10 ids is it needed.
                    MaxResults: params.snapshotIds.length > 10 ? params.snapshotIds.length : undefined,
                })
            ).body;
            return (body.Snapshots?.Snapshot ?? [])
                .filter((item) => item.SnapshotId !== undefined)
                .map((item) => {
                    const info: SnapshotInfo = { snapshotId: item.SnapshotId as string, status: item.Status ?? "" };
                    if (item.SnapshotName) info.snapshotName = item.SnapshotName;
                    if (item.Progress) info.progress = item.Progress;
                    if (item.SourceDiskId) info.sourceDiskId = item.SourceDiskId;
                    if (typeof item.RetentionDays === "number") info.retentionDays = item.RetentionDays;
                    if (item.CreationTime) info.creationTime = item.CreationTime;
                    return info;
                });
        },
    };
}

export type EcsSnapshotApi = ReturnType<typeof ecsSnapshotApi>;
