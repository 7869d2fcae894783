import { describe, expect, it } from "vitest";
import { checkDifyAdmin, diffDifyAdmin, DifyAdminInputs, DifyAdminOutputs } from "../../../dynamic-providers/dify/admin";
import { connectToDify } from "../../../dynamic-providers/dify/session";
import { useDifyProviderHost, useDifyServer } from "../../servers/dify-provider-fixture";

const PASSWORD = "Gen3rated-Passw0rd-xyz";
const INIT_PASSWORD = "Init-Passw0rd-1";

const host = useDifyProviderHost<DifyAdminInputs>("admin", "difyAdminProvider");
const { checked } = host;

function desired(url: string, overrides: Partial<DifyAdminInputs> = {}): DifyAdminInputs {
    return {
        difyUrl: `${url}/`,
        email: "ops@example.com",
        name: "Ops Admin",
        password: PASSWORD,
        initPassword: INIT_PASSWORD,
        readyTimeoutSeconds: 0,
        ...overrides,
    };
}

describe("DifyAdmin check and diff", () => {
    it("names the field and the rule, never the password", () => {
        const result = checkDifyAdmin({ difyUrl: "ftp://dify", email: "not-an-email", name: "A", password: "short" });
        expect(result.failures?.map((f) => f.property).sort()).toEqual(["difyUrl", "email", "name", "password"]);
        expect(JSON.stringify(result.failures)).not.toContain("short");
        expect(result.failures?.find((f) => f.property === "password")?.reason).toMatch(/8 characters.*letter.*digit/);
    });

    it("replaces only for another Dify or another email", () => {
        const olds = { ...desired("http://127.0.0.1:1"), difyVersion: "1.14.1", setupMode: "created", loginVerified: true } as DifyAdminOutputs;
        expect(diffDifyAdmin(olds, desired("http://127.0.0.1:1"))).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        expect(diffDifyAdmin(olds, desired("http://127.0.0.1:1", { name: "New Name" })).replaces).toEqual([]);
        expect(diffDifyAdmin(olds, desired("http://127.0.0.1:1", { email: "x@example.com" })).replaces).toEqual(["email"]);
        expect(diffDifyAdmin(olds, desired("http://127.0.0.1:2")).replaces).toEqual(["difyUrl"]);
    });
});

describe.each(["1.8.0", "1.9.2", "1.14.1"])("DifyAdmin against Dify %s", (version) => {
    const fresh = useDifyServer({ version, admin: null, initPassword: INIT_PASSWORD });
    const adopted = useDifyServer({ version, admin: { email: "ops@example.com", name: "Someone Else", password: PASSWORD } });
    let outs: DifyAdminOutputs;
    let id: string;

    it("sets up a fresh Dify through INIT_PASSWORD; read equals create; a no-op diff is empty", async () => {
        const inputs = await checked(desired(fresh.url));
        const created = await host.call<{ id: string; outs: DifyAdminOutputs }>("create", inputs);
        ({ id, outs } = created);
        expect(outs).toMatchObject({ email: "ops@example.com", setupMode: "created", difyVersion: version, difyUrl: fresh.url });
        expect(fresh.count({ route: "POST /init" })).toBe(1);
        expect(fresh.count({ route: "POST /setup" })).toBe(1);
        expect(fresh.count({ route: "POST /login" })).toBe(0);

        const read = await host.call<{ id: string; props: DifyAdminOutputs }>("read", id, outs);
        expect(read).toEqual({ id, props: outs });
        expect(await host.call("diff", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        const session = await connectToDify({ url: fresh.url }, { email: outs.email, password: PASSWORD });
        expect(session.version).toBe(version);
    });

    it("renames and rotates the password in place with one write each", async () => {
        fresh.resetCalls();
        const renamed = await checked(desired(fresh.url, { name: "Renamed Admin" }));
        expect(await host.call("diff", id, outs, renamed)).toMatchObject({ changes: true, replaces: [] });
        outs = (await host.call<{ outs: DifyAdminOutputs }>("update", id, outs, renamed)).outs;
        expect(fresh.count({ kind: "write" })).toBe(1);
        expect(fresh.accounts[0].name).toBe("Renamed Admin");

        fresh.resetCalls();
        const rotated = await checked(desired(fresh.url, { name: "Renamed Admin", password: "Rotated-Passw0rd-2" }));
        outs = (await host.call<{ outs: DifyAdminOutputs }>("update", id, outs, rotated)).outs;
        expect(fresh.count({ kind: "write" })).toBe(1);
        expect(fresh.count({ route: "POST /account/password" })).toBe(1);
        await expect(connectToDify({ url: fresh.url }, { email: outs.email, password: "Rotated-Passw0rd-2" })).resolves.toBeDefined();
    });

    it("reports a password changed outside Pulumi on refresh, and the admin gone after a reset; delete calls nothing", async () => {
        fresh.accounts[0].password = "Changed-In-The-UI-9";
        const drifted = await host.call<{ props: DifyAdminOutputs }>("read", id, outs);
        expect(drifted.props.loginVerified).toBe(false);
        expect(diffDifyAdmin(drifted.props, desired(fresh.url, { name: "Renamed Admin", password: "Rotated-Passw0rd-2" })).changes).toBe(true);

        fresh.resetSetup();
        const gone = await host.call<{ id?: string }>("read", id, outs);
        expect(gone.id ?? "").toBe("");
        fresh.resetCalls();
        await host.call("delete", id, outs);
        await host.call("delete", id, outs);
        expect(fresh.calls).toEqual([]);
    });

    it("refuses to adopt with a wrong password after exactly one login attempt, then adopts with the right one", async () => {
        const wrong = "Wr0ng-Passw0rd-777";
        const error = await host.call("create", await checked(desired(adopted.url, { password: wrong }))).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/already set up.*do not log in.*HTTP 401 authentication_failed/);
        expect((error as Error).message).not.toContain(wrong);
        expect(adopted.count({ route: "POST /login" })).toBe(1);

        adopted.resetCalls();
        const inputs = await checked(desired(adopted.url));
        const created = await host.call<{ outs: DifyAdminOutputs }>("create", inputs);
        expect(created.outs.setupMode).toBe("adopted");
        expect(adopted.count({ route: "POST /login" })).toBe(1);
        expect(adopted.count({ route: "POST /setup" })).toBe(0);
        // The adopted account is brought to the declared name.
        expect(adopted.accounts[0].name).toBe("Ops Admin");
        expect(adopted.count({ kind: "write" })).toBe(1);
    });

    it("keeps passwords out of everything the provider printed and out of the serialized provider", () => {
        for (const secret of [PASSWORD, INIT_PASSWORD, "Rotated-Passw0rd-2", "Wr0ng-Passw0rd-777"]) {
            expect(host.output()).not.toContain(secret);
            expect(host.serializedText).not.toContain(secret);
        }
    });
});
