import * as http from "http";
import { AddressInfo } from "net";

/**
 * A stand-in for a Dify host that is still booting: GET /console/api/setup answers 502 from nginx (as it does
 * while the api container starts) a set number of times, then Dify's real answer with its X-Version header.
 */
export interface SetupProbeServer {
    url: string;
    /** Requests seen on /console/api/setup. */
    probes(): number;
    close(): Promise<void>;
}

export async function startSetupProbeServer(options: { failuresBeforeReady: number; version?: string }): Promise<SetupProbeServer> {
    let probes = 0;
    const server = http.createServer((req, res) => {
        if (req.method !== "GET" || req.url !== "/console/api/setup") {
            res.writeHead(404, { "Content-Type": "application/json" }).end(JSON.stringify({ code: "not_found", message: "Not Found", status: 404 }));
            return;
        }
        probes++;
        if (probes <= options.failuresBeforeReady) {
            res.writeHead(502, { "Content-Type": "text/html" }).end("<html><center><h1>502 Bad Gateway</h1></center></html>");
            return;
        }
        res.writeHead(200, { "Content-Type": "application/json", "X-Version": options.version ?? "1.14.1", "X-Env": "PRODUCTION" });
        res.end(JSON.stringify({ step: "not_started" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
        url: `http://127.0.0.1:${port}`,
        probes: () => probes,
        close: () => new Promise((resolve) => server.close(() => resolve())),
    };
}
