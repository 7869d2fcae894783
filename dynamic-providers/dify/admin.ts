// DifyAdmin: the first admin account of a Dify instance. Creates it through /init (when Dify has an
// INIT_PASSWORD) and /setup, or adopts an instance that is already set up when the given credentials log in.
// Dify has no route to undo setup, so deleting this resource leaves the account in place.
import { DIFY_ACCOUNT_NAME_RULE, DIFY_INIT_PASSWORD_MAX_LENGTH, DIFY_PASSWORD_PATTERN, DIFY_PASSWORD_RULE, isDifyAccountName } from "../../rules/dify-account";
import * as pulumi from "@pulumi/pulumi";
import { EMAIL_RULE, isEmailAddress } from "../../rules/email";
import type { CheckFailure } from "../engine/check";
import { engineSafeProvider } from "../engine/outputs";
import { containsUnknown, isKnown } from "../engine/unknown";
import { checkDifyUrl, endpointOf, normalizeDifyUrl } from "./connection";
import { DifyConsoleApi, difyConsoleApi } from "./console-api";
import { isDifyApiError, joinSentences } from "./errors";
import { connectToDify } from "./session";
import { probeDify, setupDify } from "./transport";


export interface DifyAdminInputs {
    difyUrl: string;
    email: string;
    /** 3–30 characters (Dify's account name limits). */
    name: string;
    password: string;
    /** Dify's INIT_PASSWORD (at most 30 characters), needed only to set up a fresh instance that has one. */
    initPassword?: string;
    /** Interface language sent to /setup on Dify 1.9+ (e.g. "en-US"). */
    language?: string;
    /** How long create waits for Dify to answer GET /console/api/setup (containers starting). Default 600. */
    readyTimeoutSeconds?: number;
    readyPollSeconds?: number;
    requestTimeoutSeconds?: number;
}

export interface DifyAdminOutputs extends DifyAdminInputs {
    /** From Dify's X-Version header. */
    difyVersion: string;
    /** "created": this resource ran Dify's setup; "adopted": Dify was set up already and the credentials log in. */
    setupMode: "created" | "adopted";
    /** False when a refresh found that the password no longer logs in (the next `up` re-checks). */
    loginVerified: boolean;
}

export function checkDifyAdmin(news: Partial<DifyAdminInputs>): pulumi.dynamic.CheckResult<DifyAdminInputs> {
    const failures: CheckFailure[] = [...checkDifyUrl("difyUrl", news.difyUrl)];
    const known = isKnown;
    if (news.email === undefined || (known(news.email) && !isEmailAddress(String(news.email)))) {
        failures.push({ property: "email", reason: `email must be ${EMAIL_RULE}` });
    }
    if (news.name === undefined || (known(news.name) && !isDifyAccountName(String(news.name)))) {
        failures.push({ property: "name", reason: `name must be ${DIFY_ACCOUNT_NAME_RULE}` });
    }
    if (news.password === undefined || (known(news.password) && !DIFY_PASSWORD_PATTERN.test(String(news.password)))) {
        // Never echo the password itself.
        failures.push({
            property: "password",
            reason: `password must be ${DIFY_PASSWORD_RULE}`,
        });
    }
    if (known(news.initPassword) && String(news.initPassword).length > DIFY_INIT_PASSWORD_MAX_LENGTH) {
        failures.push({ property: "initPassword", reason: `initPassword must be at most ${DIFY_INIT_PASSWORD_MAX_LENGTH} characters (Dify's INIT_PASSWORD limit)` });
    }
    for (const key of ["readyTimeoutSeconds", "readyPollSeconds", "requestTimeoutSeconds"] as const) {
        const value = news[key];
        if (known(value) && !(typeof value === "number" && value >= 0)) {
            failures.push({ property: key, reason: `${key} must be a number of seconds, 0 or more` });
        }
    }
    if (failures.length > 0) {
        return { failures };
    }
    const inputs: DifyAdminInputs = {
        ...(news as DifyAdminInputs),
        difyUrl: normalizeDifyUrl(news.difyUrl as string),
    };
    return { inputs };
}

/** Replacing: another Dify instance or another account. Updating in place: name and password (Dify routes exist). */
export function diffDifyAdmin(olds: DifyAdminOutputs, news: DifyAdminInputs): pulumi.dynamic.DiffResult {
    const replaces: string[] = [];
    const changed: string[] = [];
    const differs = (key: keyof DifyAdminInputs) => containsUnknown(news[key]) || (olds[key] ?? "") !== (news[key] ?? "");
    if (differs("difyUrl")) {
        replaces.push("difyUrl");
    }
    if (differs("email")) {
        // Dify has no route that renames the owner's email without a mail round trip.
        replaces.push("email");
    }
    for (const key of ["name", "password", "initPassword", "language"] as const) {
        if (differs(key)) {
            changed.push(key);
        }
    }
    const unverified = olds.loginVerified === false;
    return {
        changes: replaces.length > 0 || changed.length > 0 || unverified,
        replaces,
        deleteBeforeReplace: false,
    };
}

function outputsFor(inputs: DifyAdminInputs, extra: Pick<DifyAdminOutputs, "difyVersion" | "setupMode" | "loginVerified">): DifyAdminOutputs {
    return { ...inputs, ...extra };
}

export const difyAdminProvider: pulumi.dynamic.ResourceProvider<DifyAdminInputs, DifyAdminOutputs> = engineSafeProvider({
    async check(_olds: DifyAdminInputs, news: DifyAdminInputs) {
        return checkDifyAdmin(news);
    },

    async diff(_id: string, olds: DifyAdminOutputs, news: DifyAdminInputs) {
        return diffDifyAdmin(olds, news);
    },

    async create(inputs: DifyAdminInputs) {
        const endpoint = endpointOf(inputs);
        const probe = await probeDify(endpoint, {
            waitSeconds: inputs.readyTimeoutSeconds ?? 600,
            pollSeconds: inputs.readyPollSeconds ?? 5,
        });
        if (probe.setupStep === "not_started") {
            await setupDify(endpoint, probe, {
                email: inputs.email,
                name: inputs.name,
                password: inputs.password,
                initPassword: inputs.initPassword,
                language: inputs.language,
            });
            return { id: inputs.email, outs: outputsFor(inputs, { difyVersion: probe.version, setupMode: "created", loginVerified: true }) };
        }
        // Already set up: adopt it if (and only if) these credentials log in. One attempt, never retried.
        let api: DifyConsoleApi;
        try {
            api = difyConsoleApi(await connectToDify(endpoint, { email: inputs.email, password: inputs.password }, { probe }));
        } catch (err) {
            const reason = err instanceof Error ? err.message : String(err);
            throw new Error(
                joinSentences(
                    `Dify at ${inputs.difyUrl} is already set up, and the admin credentials given for ${inputs.email} ` +
                        "do not log in, so it cannot be adopted",
                    "Set the admin password to the existing one (or reset the Dify database to set it up afresh)",
                    reason,
                ),
            );
        }
        const profile = await api.getProfile();
        if (profile.name !== inputs.name) {
            await api.renameAccount(inputs.name);
        }
        return { id: inputs.email, outs: outputsFor(inputs, { difyVersion: probe.version, setupMode: "adopted", loginVerified: true }) };
    },

    async read(id: string, props?: DifyAdminOutputs) {
        const state = props as DifyAdminOutputs;
        const endpoint = endpointOf(state);
        const probe = await probeDify(endpoint);
        if (probe.setupStep !== "finished") {
            return {}; // Dify was reset: no admin any more.
        }
        let api: DifyConsoleApi;
        try {
            api = difyConsoleApi(await connectToDify(endpoint, { email: state.email, password: state.password }, { probe }));
        } catch (err) {
            if (isDifyApiError(err) && err.path === "/login" && (err.status === 401 || err.status === 400 || err.status === 200)) {
                // The password (or the account) changed outside Pulumi: report it; the next `up` re-checks.
                return { id, props: { ...state, difyVersion: probe.version, loginVerified: false } };
            }
            throw err;
        }
        const profile = await api.getProfile();
        return {
            id,
            props: {
                ...state,
                name: profile.name ?? state.name,
                difyVersion: probe.version,
                loginVerified: true,
            },
        };
    },

    async update(_id: string, olds: DifyAdminOutputs, news: DifyAdminInputs) {
        const endpoint = endpointOf(news);
        const probe = await probeDify(endpoint);
        const passwordChanged = olds.password !== news.password;
        const nameChanged = (olds.name ?? "") !== news.name;
        if (!passwordChanged && !nameChanged && olds.loginVerified !== false) {
            // Only setup-time inputs (initPassword, language) changed: nothing to tell Dify.
            return { outs: outputsFor(news, { difyVersion: probe.version, setupMode: olds.setupMode, loginVerified: true }) };
        }
        // The password Dify has now: the old one, unless a refresh found it no longer works.
        const current = olds.loginVerified === false ? news.password : olds.password;
        let api: DifyConsoleApi;
        try {
            api = difyConsoleApi(await connectToDify(endpoint, { email: news.email, password: current }, { probe, secrets: [news.password, olds.password] }));
        } catch (err) {
            const reason = err instanceof Error ? err.message : String(err);
            throw new Error(
                joinSentences(
                    `cannot log in to Dify at ${news.difyUrl} as ${news.email} with the ${olds.loginVerified === false ? "configured" : "previous"} ` +
                        "admin password, so the admin account cannot be updated",
                    reason,
                ),
            );
        }
        if (passwordChanged && olds.loginVerified !== false) {
            // UNCONFIRMED whether /account/password expects base64 from 1.11.2; the reference names only /login.
            await api.changePassword({
                password: olds.password,
                new_password: news.password,
                repeat_new_password: news.password,
            });
        }
        if (nameChanged) {
            await api.renameAccount(news.name);
        }
        return { outs: outputsFor(news, { difyVersion: probe.version, setupMode: olds.setupMode, loginVerified: true }) };
    },

    async delete() {
        // Dify cannot be "un-set-up" through its API; the admin account stays. Nothing to call.
    },
});

/**
 * What `new DifyAdmin(...)` takes. Changing `difyUrl` or `email` replaces the resource (another instance or
 * another account; Dify has no route to undo a setup, so the old account stays). The fields marked "not
 * compared" plan no change on their own; only a create uses them.
 */
export interface DifyAdminArgs {
    /** Dify's web address, e.g. http://47.1.2.3 (no path). Changing it replaces the resource. */
    difyUrl: pulumi.Input<string>;
    /** The admin's e-mail address (rules/email.ts), the login name. Changing it replaces the resource. */
    email: pulumi.Input<string>;
    /** 3–30 characters. Changing it renames the account in place. */
    name: pulumi.Input<string>;
    /**
     * 8+ characters with a letter and a digit; e.g. a `random.RandomPassword` result. Kept secret. Changing it
     * updates in place: Dify's password is changed, logging in with the previous one.
     */
    password: pulumi.Input<string>;
    /**
     * Dify's INIT_PASSWORD (at most 30 characters), needed only to set up a fresh instance that has one. Kept
     * secret. Default: none. Changing it updates the state only (it is used by setup alone).
     */
    initPassword?: pulumi.Input<string>;
    /** Interface language sent to setup on Dify 1.9+, e.g. "en-US". Default: Dify's. Changing it updates the state only. */
    language?: pulumi.Input<string>;
    /** How long create waits for Dify to answer GET /console/api/setup, in seconds. Default 600. Not compared. */
    readyTimeoutSeconds?: pulumi.Input<number>;
    /** Pause between those probes, in seconds. Default 5. Not compared. */
    readyPollSeconds?: pulumi.Input<number>;
}

/** The first Dify admin: sets Dify up, or adopts an instance already set up with these credentials. */
export class DifyAdmin extends pulumi.dynamic.Resource {
    declare public readonly difyUrl: pulumi.Output<string>;
    declare public readonly email: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    /** Secret. */
    declare public readonly password: pulumi.Output<string>;
    declare public readonly difyVersion: pulumi.Output<string>;
    declare public readonly setupMode: pulumi.Output<"created" | "adopted">;
    declare public readonly loginVerified: pulumi.Output<boolean>;

    constructor(name: string, args: DifyAdminArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyAdminProvider,
            name,
            {
                ...args,
                password: pulumi.secret(args.password),
                initPassword: args.initPassword === undefined ? undefined : pulumi.secret(args.initPassword),
                difyVersion: undefined,
                setupMode: undefined,
                loginVerified: undefined,
            },
            { ...opts, additionalSecretOutputs: ["password", "initPassword", ...(opts?.additionalSecretOutputs ?? [])] },
            "dify",
            "Admin",
        );
    }
}
