// The route table of the fake Dify console and what its handlers share: the request and reply shapes, Dify's
// errors (flask-restx's `{code,message,status}`, FastOpenAPI's `{error:{...}}`), and small request parsers.
import * as http from "http";
import { CallKind, DifyAccount } from "./types";

/** An error Dify would answer; on a FastOpenAPI route only its status survives (see fastOpenApiErrorBody). */
export class HttpError extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
        readonly extra: Record<string, unknown> = {},
        /** Set-Cookie headers the error answer still carries (Flask saves a modified session on any answer). */
        readonly setCookies?: string[],
    ) {
        super(message);
    }
}

/**
 * The body FastOpenAPI (the router of /setup, /init from 1.12) answers for an error raised by the route:
 * format_exception_response keeps the status and, for Dify's BaseHTTPException (a werkzeug HTTPException
 * without `message`), werkzeug's `name` ("Unauthorized", "Forbidden"); Dify's code and description are lost.
 * A payload that fails pydantic validation is 422 with a fixed text (fastopenapi/base_router.py,
 * error_handler.py; confirmed against Dify 1.14.1 by dify-console-server.agreement.test.ts).
 */
export function fastOpenApiErrorBody(status: number): Record<string, unknown> {
    if (status === 422) {
        const message = "Validation error for parameter 'payload'";
        return { error: { type: "validation_error", message, status, details: message } };
    }
    const types: Record<number, string> = {
        400: "bad_request",
        401: "authentication_error",
        403: "authorization_error",
        404: "resource_not_found",
        409: "resource_conflict",
        500: "internal_server_error",
        503: "service_unavailable",
    };
    const names: Record<number, string> = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        500: "Internal Server Error",
        503: "Service Unavailable",
    };
    return { error: { type: types[status] ?? "internal_server_error", message: names[status] ?? "Internal Server Error", status } };
}

export const invalidParam = (message: string) => new HttpError(400, "invalid_param", message);

/** str() of a pydantic (2.12, Dify 1.14.1) ValidationError with one error, which Dify answers as the message. */
export function pydanticError(model: string, field: string, problem: string, type: string, input: string): string {
    return (
        `1 validation error for ${model}\n${field}\n  ${problem} [type=${type}, input_value='${input}', input_type=str]\n` +
        `    For further information visit https://errors.pydantic.dev/2.12/v/${type}`
    );
}

const UUID_SOURCE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
export const UUID = new RegExp(`^${UUID_SOURCE}$`);

export function parseCookies(header: string | undefined): Map<string, string> {
    const cookies = new Map<string, string>();
    for (const part of (header ?? "").split(";")) {
        const eq = part.indexOf("=");
        if (eq > 0) {
            cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
        }
    }
    return cookies;
}

export interface Request {
    method: string;
    path: string;
    query: URLSearchParams;
    headers: http.IncomingHttpHeaders;
    raw: Buffer;
    json: Record<string, unknown>;
    params: string[];
    account?: DifyAccount;
}

export interface Reply {
    status?: number;
    body?: unknown;
    setCookies?: string[];
    /** Server-sent events, each written as `data: {...}\n\n` (Dify adds `event: ping` every 10 s while a run lasts: none here). */
    events?: Record<string, unknown>[];
}

export interface Route {
    method: string;
    pattern: RegExp;
    route: string;
    kind: CallKind;
    login: boolean;
    /** FastOpenAPI error shape from 1.12.0. */
    fastOpenApi?: boolean;
    handle(req: Request): Reply | Promise<Reply>;
}

export function requireString(req: Request, field: string): string {
    const value = req.json[field];
    if (typeof value !== "string" || value === "") {
        throw new HttpError(400, "invalid_param", `Missing required parameter in the JSON body: ${field}`, {
            params: field,
        });
    }
    return value;
}

/** The console API's routes (below /console/api), matched in the order they were added. */
export class Router {
    private readonly routes: Route[] = [];

    /**
     * Adds a route. `path` may hold `<id>` (one segment) and `<path>` (one or more); `login`: the route needs a
     * logged-in account (ext_login, and the CSRF check from 1.9.2).
     */
    route(
        method: string,
        path: string,
        kind: CallKind,
        login: boolean,
        handle: Route["handle"],
        extra: { fastOpenApi?: boolean; uuid?: boolean } = {},
    ): void {
        // `uuid`: Flask's <uuid:...> converter (the /apps/<uuid:app_id> routes): any other segment matches no route.
        const id = extra.uuid ? `(${UUID_SOURCE})` : "([^/]+)";
        const pattern = new RegExp("^" + path.replace(/<path>/g, "(.+)").replace(/<id>/g, id) + "$");
        this.routes.push({ method, pattern, route: `${method} ${path}`, kind, login, handle, fastOpenApi: extra.fastOpenApi });
    }

    /** The first route for `method` whose pattern matches `path` (below the prefix), with its decoded parameters. */
    match(method: string, path: string): { route: Route; params: string[] } | undefined {
        for (const candidate of this.routes) {
            const match = candidate.method === method ? candidate.pattern.exec(path) : null;
            if (match) {
                return { route: candidate, params: match.slice(1).map((p) => decodeURIComponent(p)) };
            }
        }
        return undefined;
    }
}
