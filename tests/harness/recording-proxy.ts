// A reverse proxy on 127.0.0.1 that records every console-API call it forwards: what our clients send to a real
// Dify, counted the way the fake Dify counts them (route template, read/write/auth). The real server cannot
// count for us, and counting at the client would miss retries and the engine's separate processes.
import * as http from "http";
import type { AddressInfo } from "net";

export type CallKind = "auth" | "read" | "write";

export interface ProxiedCall {
    method: string;
    /** The path below /console/api with ids replaced, e.g. "PUT /apps/:id". */
    route: string;
    path: string;
    status: number;
    kind: CallKind;
    /** Milliseconds from the request to the end of the answer. */
    ms: number;
}

export interface RecordingProxy {
    /** The address to give clients in place of the target's. */
    readonly url: string;
    readonly calls: ProxiedCall[];
    /** Where calls go; may be set after start, so the target can be told the proxy's address first. */
    target: string;
    /** Counts calls since `from` (an index into `calls`), optionally of one kind or route. */
    count(filter?: { kind?: CallKind; route?: string; from?: number }): number;
    /**
     * Fault: the next write (to `route` when given, e.g. "POST /apps") reaches the target and is applied, then
     * the client's connection is reset before the answer: a lost answer. Same hook as the fake Dify's.
     */
    resetAfterNextWrite(route?: string): void;
    /** Fault: the next `count` requests (to `route` when given) get `status` from the proxy, as nginx answers while containers restart. */
    failNextRequests(count: number, options?: { status?: 502 | 503 | 504; route?: string }): void;
    close(): Promise<void>;
}

const CONSOLE_PREFIX = "/console/api";
/** Routes that log in or renew a session, or probe without one. */
const AUTH_ROUTES = new Set(["POST /login", "POST /refresh-token", "POST /logout", "GET /setup", "POST /setup", "POST /init", "GET /init"]);
const ID_SEGMENT = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)$/i;

/** "PUT /apps/6f1c…/model-config" → "PUT /apps/:id/model-config"; non-console paths keep their full path. */
export function routeOf(method: string, url: string): string {
    const pathname = url.split("?")[0];
    const below = pathname.startsWith(CONSOLE_PREFIX) ? pathname.slice(CONSOLE_PREFIX.length) || "/" : pathname;
    return `${method} ${below
        .split("/")
        .map((segment) => (ID_SEGMENT.test(segment) ? ":id" : segment))
        .join("/")}`;
}

function kindOf(method: string, route: string): CallKind {
    if (AUTH_ROUTES.has(route)) {
        return "auth";
    }
    return method === "GET" || method === "HEAD" ? "read" : "write";
}

/**
 * Starts a proxy to `target` (e.g. http://127.0.0.1:5001; or set `target` later); streams pass through
 * unbuffered. Like nginx in front of Dify's api container, it is the address Dify is told it has.
 */
export async function startRecordingProxy(target = ""): Promise<RecordingProxy> {
    const calls: ProxiedCall[] = [];
    const resets: { route?: string }[] = [];
    const failures: { status: number; route?: string; left: number }[] = [];
    const server = http.createServer((req, res) => {
        const upstream = new URL(proxy.target);
        const started = Date.now();
        const method = req.method ?? "GET";
        const route = routeOf(method, req.url ?? "/");
        const failure = failures.find((fault) => fault.left > 0 && (fault.route === undefined || fault.route === route));
        if (failure) {
            failure.left--;
            calls.push({ method, route, path: (req.url ?? "").split("?")[0], status: failure.status, kind: kindOf(method, route), ms: 0 });
            req.resume();
            res.writeHead(failure.status, { "Content-Type": "text/html" });
            res.end(`<html><head><title>${failure.status}</title></head><body><center><h1>${failure.status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>`);
            return;
        }
        const resetIndex = method === "GET" || method === "HEAD" ? -1 : resets.findIndex((fault) => fault.route === undefined || fault.route === route);
        const reset = resetIndex >= 0 ? resets.splice(resetIndex, 1)[0] : undefined;
        const forward = http.request(
            {
                host: upstream.hostname,
                port: upstream.port,
                method,
                path: req.url,
                headers: { ...req.headers, host: upstream.host },
            },
            (answer) => {
                if (reset) {
                    // Applied upstream; the client never hears of it.
                    answer.resume();
                    answer.on("end", () => {
                        calls.push({ method, route, path: (req.url ?? "").split("?")[0], status: answer.statusCode ?? 0, kind: kindOf(method, route), ms: Date.now() - started });
                        req.socket.destroy();
                    });
                    return;
                }
                // Recorded when the answer starts, before the client can see it, so a count taken right after
                // a call returns includes that call; `ms` is the time to the answer's headers.
                calls.push({ method, route, path: (req.url ?? "").split("?")[0], status: answer.statusCode ?? 0, kind: kindOf(method, route), ms: Date.now() - started });
                res.writeHead(answer.statusCode ?? 502, answer.headers);
                answer.pipe(res);
            },
        );
        forward.on("error", (err) => {
            calls.push({ method, route, path: req.url ?? "", status: 502, kind: kindOf(method, route), ms: Date.now() - started });
            if (!res.headersSent) {
                res.writeHead(502, { "Content-Type": "text/plain" });
            }
            res.end(`proxy: ${err.message}`);
        });
        req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proxy: RecordingProxy = {
        url,
        calls,
        target,
        count: (filter = {}) =>
            calls
                .slice(filter.from ?? 0)
                .filter((call) => (filter.kind === undefined || call.kind === filter.kind) && (filter.route === undefined || call.route === filter.route)).length,
        resetAfterNextWrite: (route) => {
            resets.push({ route });
        },
        failNextRequests: (count, options = {}) => {
            failures.push({ status: options.status ?? 502, route: options.route, left: count });
        },
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
    return proxy;
}
