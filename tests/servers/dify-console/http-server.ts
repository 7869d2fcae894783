// The HTTP side of the fake Dify console: listens on 127.0.0.1, hands /console/api requests to the router, answers
// as Flask/flask-restx (and the nginx in front of Dify) do, counts every call per route and injects the faults of
// lost answers (a reset connection after a write) and of a restarting api container (the proxy's 502/503/504).
import * as http from "http";
import { AddressInfo } from "net";
import { fastOpenApiErrorBody, HttpError, Request, Route, Router } from "./router";
import { CallKind, DifyAccount, RecordedCall } from "./types";

const PREFIX = "/console/api";

/** werkzeug's own 404 page: flask-restx does not turn a request that matches no route into JSON. */
const NOT_FOUND_PAGE =
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not " +
    "found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";

const PROXY_TITLES: Record<number, string> = { 502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out" };

export class ConsoleHttpServer {
    readonly calls: RecordedCall[] = [];
    /** Request bodies per route template, in order. */
    readonly bodies = new Map<string, unknown[]>();
    private readonly resetFaults: { route?: string }[] = [];
    private readonly proxyFaults: { status: number; route?: string; left: number }[] = [];
    private readonly server: http.Server;

    constructor(
        private readonly version: string,
        private readonly router: Router,
        /** Checks the credentials of a login_required request (401 HttpError when they do not hold). */
        private readonly authenticate: (req: Request) => DifyAccount,
    ) {
        this.server = http.createServer((incoming, outgoing) => {
            const chunks: Buffer[] = [];
            incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
            incoming.on("end", () => void this.handle(incoming, outgoing, Buffer.concat(chunks)));
        });
    }

    /** Starts listening on a free loopback port; answers the server's address. */
    async listen(): Promise<string> {
        await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
        return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    close(): Promise<void> {
        return new Promise<void>((resolve) => {
            this.server.closeAllConnections();
            this.server.close(() => resolve());
        });
    }

    count(filter: { route?: string; kind?: CallKind; method?: string } = {}): number {
        return this.calls.filter(
            (c) =>
                (!filter.route || c.route === filter.route) &&
                (!filter.kind || c.kind === filter.kind) &&
                (!filter.method || c.method === filter.method),
        ).length;
    }

    resetCalls(): void {
        this.calls.length = 0;
        this.bodies.clear();
    }

    resetAfterNextWrite(route?: string): void {
        this.resetFaults.push({ route });
    }

    failNextRequests(count: number, options: { status?: 502 | 503 | 504; route?: string } = {}): void {
        this.proxyFaults.push({ status: options.status ?? 502, route: options.route, left: count });
    }

    private async handle(incoming: http.IncomingMessage, outgoing: http.ServerResponse, raw: Buffer): Promise<void> {
        const url = new URL(incoming.url ?? "/", "http://127.0.0.1");
        const method = incoming.method ?? "GET";
        outgoing.setHeader("X-Version", this.version);
        outgoing.setHeader("X-Env", "PRODUCTION");
        const matched = url.pathname.startsWith(PREFIX) ? this.router.match(method, url.pathname.slice(PREFIX.length)) : undefined;
        const route = matched?.route;
        const routeName = route ? route.route : `${method} ${url.pathname}`;
        const record = (status: number) => {
            const kind = route ? route.kind : method === "GET" ? "read" : "write";
            this.calls.push({ method, route: routeName, path: url.pathname, status, kind });
        };
        let dropAnswer = false;
        const sendJson = (status: number, body: unknown, setCookies?: string[]) => {
            record(status);
            if (dropAnswer) {
                incoming.socket.destroy();
                return;
            }
            if (setCookies) {
                outgoing.setHeader("Set-Cookie", setCookies);
            }
            outgoing.writeHead(status, { "Content-Type": "application/json" });
            outgoing.end(status === 204 ? undefined : JSON.stringify(body));
        };
        const proxyFault = this.proxyFaults.find((f) => f.left > 0 && (!f.route || f.route === routeName));
        if (proxyFault) {
            // nginx's own page: the request never reached Dify (no X-Version either).
            proxyFault.left--;
            record(proxyFault.status);
            outgoing.removeHeader("X-Version");
            outgoing.removeHeader("X-Env");
            const title = PROXY_TITLES[proxyFault.status];
            outgoing.writeHead(proxyFault.status, { "Content-Type": "text/html" });
            outgoing.end(`<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`);
            return;
        }
        if (!route || !matched) {
            record(404);
            outgoing.writeHead(404, { "Content-Type": "text/html; charset=utf-8" });
            outgoing.end(NOT_FOUND_PAGE);
            return;
        }
        const resetIndex = route.kind === "write" && method !== "GET" ? this.resetFaults.findIndex((f) => !f.route || f.route === routeName) : -1;
        if (resetIndex >= 0) {
            // The write is applied below; its answer is then dropped with the connection (a lost answer).
            this.resetFaults.splice(resetIndex, 1);
            dropAnswer = true;
        }
        let json: Record<string, unknown> = {};
        const contentType = String(incoming.headers["content-type"] ?? "");
        if (raw.length > 0 && contentType.includes("application/json")) {
            try {
                json = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
            } catch {
                sendJson(400, { code: "bad_request", message: "Failed to decode JSON object", status: 400 });
                return;
            }
        }
        const req: Request = { method, path: url.pathname, query: url.searchParams, headers: incoming.headers, raw, json, params: matched.params };
        this.bodies.set(route.route, [...(this.bodies.get(route.route) ?? []), json]);
        try {
            if (route.login) {
                req.account = this.authenticate(req);
            }
            const reply = await route.handle(req);
            if (reply.events) {
                record(200);
                if (dropAnswer) {
                    incoming.socket.destroy();
                    return;
                }
                outgoing.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" });
                for (const event of reply.events) {
                    outgoing.write(`data: ${JSON.stringify(event)}\n\n`);
                }
                outgoing.end();
                return;
            }
            sendJson(reply.status ?? 200, reply.body, reply.setCookies);
        } catch (err) {
            sendJson(...errorAnswer(route, err));
        }
    }
}

/** What Dify answers for an exception raised by a route: status, body and the cookies it still sets. */
function errorAnswer(route: Route, err: unknown): [number, unknown, string[]?] {
    if (!(err instanceof HttpError)) {
        return [500, { code: "unknown", message: String(err), status: 500 }];
    }
    // Payload validation on a FastOpenAPI route is pydantic's: 422 whatever the field.
    const status = route.fastOpenApi && err.code === "invalid_param" ? 422 : err.status;
    const body = route.fastOpenApi ? fastOpenApiErrorBody(status) : { code: err.code, message: err.message, status: err.status, ...err.extra };
    return [status, body, err.setCookies];
}
