// Plugins (/workspaces/current/plugin/...): the marketplace's latest versions, uploading a package, installing from
// the marketplace or an upload as a task that the client polls, listing and uninstalling.
import * as crypto from "crypto";
import { HttpError, invalidParam, Reply, Request, Router } from "./router";
import { ConsoleState } from "./state";
import { TONGYI_MARKETPLACE_IDENTIFIER, TONGYI_MARKETPLACE_VERSION, TONGYI_PLUGIN } from "./tongyi";
import { PluginTaskStep } from "./types";

const PLUGIN = "/workspaces/current/plugin";

interface InstallTask {
    pollsLeft: number;
    uniqueIdentifiers: string[];
    status: string;
    fromMarketplace: boolean;
    /** The steps of a scripted task (options.pluginInstallScripts), and how many polls it answered. */
    script?: PluginTaskStep[];
    polls: number;
    message: string;
}

function parseMultipart(body: Buffer, contentType: string): Map<string, { fileName?: string; content: Buffer }> {
    const parts = new Map<string, { fileName?: string; content: Buffer }>();
    const boundaryMatch = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!boundaryMatch) {
        return parts;
    }
    const boundary = Buffer.from(`--${boundaryMatch[1] ?? boundaryMatch[2]}`);
    let start = body.indexOf(boundary);
    while (start >= 0) {
        const next = body.indexOf(boundary, start + boundary.length);
        if (next < 0) {
            break;
        }
        const part = body.subarray(start + boundary.length + 2, next - 2); // skip CRLF after boundary and before next
        const headerEnd = part.indexOf("\r\n\r\n");
        if (headerEnd >= 0) {
            const headers = part.subarray(0, headerEnd).toString("utf8");
            const name = /name="([^"]*)"/i.exec(headers)?.[1];
            const fileName = /filename="([^"]*)"/i.exec(headers)?.[1];
            if (name) {
                parts.set(name, { fileName, content: part.subarray(headerEnd + 4) });
            }
        }
        start = next;
    }
    return parts;
}

const pluginIdOf = (uniqueIdentifier: string) => uniqueIdentifier.split(":")[0];

export class PluginRoutes {
    private readonly uploads = new Map<string, { pluginId: string; version: string }>();
    private readonly tasks = new Map<string, InstallTask>();

    constructor(private readonly state: ConsoleState) {}

    register(router: Router): void {
        const { options, plugins } = this.state;
        router.route("POST", `${PLUGIN}/list/latest-versions`, "read", true, (req) => {
            if (options.marketplace === false) {
                // fetch_latest_plugin_version logs the marketplace failure and returns what it has: nothing.
                return { body: { versions: {} } };
            }
            const ids = (req.json.plugin_ids ?? []) as string[];
            const versions: Record<string, unknown> = {};
            for (const id of ids) {
                versions[id] =
                    id === TONGYI_PLUGIN
                        ? {
                              plugin_id: id,
                              version: TONGYI_MARKETPLACE_VERSION,
                              unique_identifier: TONGYI_MARKETPLACE_IDENTIFIER,
                              status: "active",
                              deprecated_reason: "",
                              alternative_plugin_id: "",
                          }
                        : null;
            }
            return { body: { versions } };
        });

        router.route("POST", `${PLUGIN}/install/marketplace`, "write", true, (req) => this.install(req, true));
        router.route("POST", `${PLUGIN}/install/pkg`, "write", true, (req) => this.install(req, false));

        router.route("POST", `${PLUGIN}/upload/pkg`, "write", true, (req) => {
            const file = parseMultipart(req.raw, String(req.headers["content-type"] ?? "")).get("pkg");
            if (!file || file.content.length === 0) {
                throw new HttpError(400, "plugin_error", "no plugin package uploaded (multipart field pkg)");
            }
            const digest = crypto.createHash("sha256").update(file.content).digest("hex");
            const uniqueIdentifier = `${TONGYI_PLUGIN}:0.1.13-local@${digest}`;
            this.uploads.set(uniqueIdentifier, { pluginId: TONGYI_PLUGIN, version: "0.1.13-local" });
            return { body: { unique_identifier: uniqueIdentifier, manifest: { name: "tongyi", version: "0.1.13-local" }, verification: null } };
        });

        router.route("GET", `${PLUGIN}/tasks/<id>`, "read", true, (req) => this.pollTask(req.params[0]));

        router.route("GET", `${PLUGIN}/list`, "read", true, () => ({
            body: {
                plugins: [...plugins.values()].map((p) => ({
                    plugin_id: p.pluginId,
                    plugin_unique_identifier: p.uniqueIdentifier,
                    installation_id: p.installationId,
                    version: p.version,
                    declaration: { name: p.pluginId.split("/")[1] },
                })),
                total: plugins.size,
            },
        }));

        router.route("POST", `${PLUGIN}/uninstall`, "write", true, (req) => {
            const installationId = req.json.plugin_installation_id;
            const plugin = [...plugins.values()].find((p) => p.installationId === installationId);
            if (!plugin) {
                throw new HttpError(400, "plugin_error", "plugin installation not found");
            }
            plugins.delete(plugin.pluginId);
            return { body: { success: true } };
        });
    }

    private install(req: Request, fromMarketplace: boolean): Reply {
        const identifiers = (req.json.plugin_unique_identifiers ?? []) as string[];
        if (identifiers.length === 0) {
            throw invalidParam("plugin_unique_identifiers is required");
        }
        if (fromMarketplace && this.state.options.marketplace === false) {
            throw new HttpError(400, "plugin_error", "Failed to download the plugin from the marketplace");
        }
        for (const identifier of identifiers) {
            if (!fromMarketplace && !this.uploads.has(identifier)) {
                throw new HttpError(400, "plugin_error", `plugin ${identifier} was not uploaded`);
            }
        }
        if (identifiers.every((id) => [...this.state.plugins.values()].some((p) => p.uniqueIdentifier === id))) {
            return { body: { all_installed: true, task_id: "" } };
        }
        const taskId = crypto.randomUUID();
        const script = this.state.options.pluginInstallScripts?.shift();
        this.tasks.set(taskId, {
            pollsLeft: this.state.options.pluginInstallPolls ?? 1,
            uniqueIdentifiers: identifiers,
            status: "running",
            fromMarketplace,
            script,
            polls: 0,
            message: "",
        });
        return { body: { all_installed: false, task_id: taskId } };
    }

    private installPlugins(task: InstallTask): void {
        for (const identifier of task.uniqueIdentifiers) {
            const pluginId = pluginIdOf(identifier);
            if (this.state.plugins.get(pluginId)?.uniqueIdentifier === identifier) {
                continue;
            }
            this.state.plugins.set(pluginId, {
                pluginId,
                uniqueIdentifier: identifier,
                installationId: crypto.randomUUID(),
                version: identifier.split(":")[1]?.split("@")[0] ?? "",
            });
        }
    }

    /** A scripted task's next answer (see options.pluginInstallScripts). */
    private scriptedStep(task: InstallTask, script: PluginTaskStep[]): void {
        const step = script[Math.min(task.polls, script.length - 1)];
        task.polls++;
        if (step.status === "success" || step.status === "gone") {
            this.installPlugins(task);
        }
        if (step.status === "gone") {
            throw new HttpError(500, "unknown", "Internal Server Error");
        }
        task.status = step.status;
        task.message = "message" in step ? (step.message ?? "") : "";
    }

    /** A poll of an install task: "running" for pluginInstallPolls polls, then installed (or failed). */
    private pollTask(id: string): Reply {
        const task = this.tasks.get(id);
        if (!task) {
            throw new HttpError(400, "plugin_error", "task not found");
        }
        if (task.script && task.script.length > 0) {
            this.scriptedStep(task, task.script);
        } else if (task.status === "running") {
            if (task.pollsLeft > 0) {
                task.pollsLeft--;
            } else if (this.state.options.pluginInstallFails) {
                task.status = "failed";
                task.message = "pip install failed: could not reach the package index";
            } else {
                task.status = "success";
                this.installPlugins(task);
            }
        }
        return {
            body: {
                task: {
                    id,
                    status: task.status,
                    total_plugins: task.uniqueIdentifiers.length,
                    completed_plugins: task.status === "success" ? task.uniqueIdentifiers.length : 0,
                    plugins: task.uniqueIdentifiers.map((identifier) => ({
                        plugin_unique_identifier: identifier,
                        plugin_id: pluginIdOf(identifier),
                        status: task.status === "failed" ? "failed" : task.status === "success" ? "success" : "running",
                        message: task.message,
                    })),
                },
            },
        };
    }
}
