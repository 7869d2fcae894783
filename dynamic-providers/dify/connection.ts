// What every Dify resource shares: the connection inputs (where Dify is, whose admin account to log in with),
// their check, the logged-in session they give, and the error that records a half-made object.
import type { CheckFailure } from "../engine/check";
import { containsUnknown } from "../engine/unknown";
import { EMAIL_RULE, isEmailAddress } from "../../rules/email";
import { connectToDify, DifyConsole } from "./session";
import { DifyEndpoint } from "./transport";

/** Inputs every Dify resource takes to reach and log in to the console API. */
export interface DifyConnectionInputs {
    /** Dify's web address, e.g. http://47.1.2.3. */
    difyUrl: string;
    adminEmail: string;
    adminPassword: string;
}

/** Dify's root address: an absolute http(s) URL without a path. */
export function checkDifyUrl(property: string, value: unknown): CheckFailure[] {
    if (value === undefined || containsUnknown(value)) {
        return value === undefined ? [{ property, reason: `${property} is required: Dify's web address, e.g. http://47.1.2.3` }] : [];
    }
    if (typeof value !== "string") {
        return [{ property, reason: `${property} must be a string URL with scheme http or https` }];
    }
    try {
        const url = new URL(value);
        if (url.protocol !== "http:" && url.protocol !== "https:") {
            return [{ property, reason: `${property} must use http or https, got ${url.protocol.replace(":", "")}` }];
        }
        if (url.pathname !== "/" && url.pathname !== "") {
            return [{ property, reason: `${property} must be Dify's root address (no path; the console API is below /console/api)` }];
        }
    } catch {
        return [{ property, reason: `${property} must be an absolute http(s) URL, e.g. http://47.1.2.3` }];
    }
    return [];
}

export function checkDifyConnection(news: Partial<DifyConnectionInputs>): CheckFailure[] {
    const failures = checkDifyUrl("difyUrl", news.difyUrl);
    if (news.adminEmail === undefined || (!containsUnknown(news.adminEmail) && !isEmailAddress(String(news.adminEmail)))) {
        failures.push({ property: "adminEmail", reason: `adminEmail must be the Dify admin's e-mail address: ${EMAIL_RULE}` });
    }
    if (news.adminPassword === undefined || news.adminPassword === "") {
        failures.push({ property: "adminPassword", reason: "adminPassword is required (the Dify admin's password)" });
    }
    return failures;
}

/** Normalizes Dify's URL so state does not flip between "http://x" and "http://x/". */
export function normalizeDifyUrl(url: string): string {
    return containsUnknown(url) ? url : url.replace(/\/+$/, "");
}

export function endpointOf(inputs: { difyUrl: string; requestTimeoutSeconds?: number }): DifyEndpoint {
    return {
        url: inputs.difyUrl,
        requestTimeoutMs: inputs.requestTimeoutSeconds ? inputs.requestTimeoutSeconds * 1000 : undefined,
    };
}

/** Logs in with the connection inputs of a resource. */
export function connectWith(inputs: DifyConnectionInputs & { requestTimeoutSeconds?: number }, secrets: string[] = []): Promise<DifyConsole> {
    return connectToDify(endpointOf(inputs), { email: inputs.adminEmail, password: inputs.adminPassword }, { secrets });
}

/**
 * An error that tells the engine the object was created but is not fully set up: it records the id and
 * outputs (ErrorResourceInitFailed), so the next `pulumi up` updates the object instead of creating a twin.
 */
export function resourceInitFailure(id: string, properties: object, cause: unknown): Error {
    const message = cause instanceof Error ? cause.message : String(cause);
    const err = new Error(message) as Error & { id: string; properties: object; reasons: string[] };
    err.id = id;
    err.properties = properties;
    err.reasons = [message];
    return err;
}
