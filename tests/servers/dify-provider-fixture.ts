import { afterAll, beforeAll, expect } from "vitest";
import { HostedProvider, startHostedProvider } from "../harness/engine-provider";
import { DifyConsoleServer, DifyConsoleServerOptions, startDifyConsoleServer } from "./dify-console-server";

/** The admin of an already set-up fake Dify, and what the resources log in with. */
export const DIFY_ADMIN = { email: "ops@example.com", name: "Ops Admin", password: "Adm1n-Passw0rd-x" };

/** The connection inputs every Dify resource but the admin takes: where Dify is and how to log in as its admin. */
export function difyAdminConnection(difyUrl: string): { difyUrl: string; adminEmail: string; adminPassword: string } {
    return { difyUrl, adminEmail: DIFY_ADMIN.email, adminPassword: DIFY_ADMIN.password };
}

/** A Dify provider hosted the engine's way, with `checked`: check through the host, asserting no failures. */
export interface DifyProviderHost<Inputs> extends HostedProvider {
    checked(inputs: Inputs): Promise<Inputs>;
}

/**
 * Hosts one provider of `dynamic-providers/dify/<resource>` for the enclosing suite (started in `beforeAll`,
 * closed in `afterAll`). The object answers for the started provider, so it can be used as a `const`.
 */
export function useDifyProviderHost<Inputs>(resource: string, exportName: string): DifyProviderHost<Inputs> {
    let hosted: HostedProvider | undefined;
    beforeAll(async () => {
        hosted = await startHostedProvider({ module: `dynamic-providers/dify/${resource}`, exportName });
    });
    afterAll(async () => {
        await hosted?.close();
    });
    const started = (): HostedProvider => {
        if (!hosted) {
            throw new Error(`the ${resource} provider is not started: use it inside a test or hook`);
        }
        return hosted;
    };
    return {
        call: <T>(method: string, ...args: unknown[]) => started().call<T>(method, ...args),
        get serializedText() {
            return started().serializedText;
        },
        output: () => started().output(),
        close: () => started().close(),
        async checked(inputs: Inputs): Promise<Inputs> {
            const result = await started().call<{ inputs?: Inputs; failures?: unknown[] }>("check", {}, inputs);
            expect(result.failures ?? []).toEqual([]);
            return result.inputs as Inputs;
        },
    };
}

/** The options of a fake Dify; `admin` is DIFY_ADMIN unless given (null: a Dify not set up yet). */
export type DifyServerOptions = Omit<DifyConsoleServerOptions, "admin"> & { admin?: DifyConsoleServerOptions["admin"] | null };

/** Starts a fake Dify console server of `options.version`, set up with DIFY_ADMIN unless told otherwise. */
export function startDifyServer(options: DifyServerOptions): Promise<DifyConsoleServer> {
    const { admin = DIFY_ADMIN, ...rest } = options;
    return startDifyConsoleServer({ ...rest, ...(admin ? { admin } : {}) });
}

/**
 * A fake Dify for the enclosing suite (started in `beforeAll`, closed in `afterAll`). The object answers for
 * the started server; `beforeAll` hooks registered after this call see it started (vitest runs them in order).
 */
export function useDifyServer(options: DifyServerOptions): DifyConsoleServer {
    let server: DifyConsoleServer | undefined;
    beforeAll(async () => {
        server = await startDifyServer(options);
    });
    afterAll(async () => {
        await server?.close();
    });
    return new Proxy({} as DifyConsoleServer, {
        get(_target, key) {
            if (!server) {
                throw new Error(`the fake Dify ${options.version} is not started: use it inside a test or hook`);
            }
            const value: unknown = Reflect.get(server, key, server);
            return typeof value === "function" ? value.bind(server) : value;
        },
    });
}
