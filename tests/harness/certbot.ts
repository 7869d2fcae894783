// certbot from PyPI at the version the instance runs (rules/certbot.ts), for running the bootstrap's real issuance
// and renewal against Pebble. certbot-env.sh installs it with uv into .cache/certbot/<version>/ once (seconds with
// a warm uv cache); later calls cost a stat.
import { execFile } from "child_process";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";
import { CERTBOT_VERSION } from "../../rules/certbot";

const ENV_SCRIPT = path.join(PROJECT_ROOT, "tests", "harness", "certbot-env.sh");

export interface CertbotInstall {
    /** The certbot executable of the environment. */
    certbot: string;
    version: string;
    built: boolean;
    seconds: number;
}

/** certbot CERTBOT_VERSION, installing it when missing. Throws, saying why, when it cannot be installed. */
export function ensureCertbot(): Promise<CertbotInstall> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        execFile("bash", [ENV_SCRIPT, CERTBOT_VERSION], { timeout: 600_000, maxBuffer: 16 << 20, encoding: "utf8" }, (error, stdout, stderr) => {
            if (error) {
                reject(
                    new Error(
                        `could not install certbot ${CERTBOT_VERSION} (${ENV_SCRIPT}; it needs Python 3.12 and PyPI): ` +
                            `${stderr.trim().split("\n").slice(-25).join("\n") || error.message}`,
                    ),
                );
                return;
            }
            const [certbot, how] = stdout.trim().split("\n");
            resolve({ certbot, version: CERTBOT_VERSION, built: how === "built", seconds: (Date.now() - started) / 1000 });
        });
    });
}
