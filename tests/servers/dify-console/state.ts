// What the fake Dify console keeps in memory and every route group shares: the records tests can inspect (accounts,
// MCP providers, apps, plugins, model credentials and defaults), the options it was started with, and the Dify
// version it behaves like. State that only one route group reads (tokens, OAuth states, upload and install tasks,
// the chat script) lives in that group's class.
import * as crypto from "crypto";
import { AppRecord, CredentialRecord, DifyAccount, DifyConsoleServerOptions, InstalledPlugin, McpProviderRecord } from "./types";

/** The value Dify's console shows for a stored secret; sent back, it means "keep what is stored". */
export const HIDDEN = "[__HIDDEN__]";

function versionCore(version: string): number[] {
    const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
    if (!match) {
        throw new Error(`unparsable Dify version ${version}`);
    }
    return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

function versionAtLeast(version: string, minimum: string): boolean {
    const a = versionCore(version);
    const b = versionCore(minimum);
    for (let i = 0; i < 3; i++) {
        if (a[i] !== b[i]) {
            return a[i] > b[i];
        }
    }
    return true;
}

export class ConsoleState {
    readonly version: string;
    readonly accounts: DifyAccount[] = [];
    /** When /setup finished; undefined before. */
    setupAt: string | undefined;
    /** Failed logins per email. */
    readonly loginFailures = new Map<string, number>();
    readonly mcpProviders = new Map<string, McpProviderRecord>();
    readonly apps = new Map<string, AppRecord>();
    readonly plugins = new Map<string, InstalledPlugin>();
    /** Credentials per model provider, and which one is active. */
    readonly modelCredentials = new Map<string, { items: CredentialRecord[]; currentId: string | null }>();
    readonly defaultModels = new Map<string, { provider: string; model: string }>();
    /** The Dify web address, known once the server listens. */
    baseUrl = "";

    constructor(readonly options: DifyConsoleServerOptions) {
        this.version = options.version;
        versionCore(this.version);
        if (options.admin) {
            this.accounts.push({ id: crypto.randomUUID(), ...options.admin });
            this.setupAt = new Date().toISOString();
        }
    }

    /** Whether the Dify version behaved like is `minimum` or later. */
    atLeast(minimum: string): boolean {
        return versionAtLeast(this.version, minimum);
    }
}
