import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

/** What the smoke test asks, and of which deployment. */
export interface AgentSmokeTestArgs {
    /** Dify's public base URL (`DifyHost.difyUrl`). */
    difyUrl: pulumi.Input<string>;
    /** The admin's e-mail and password (secret) the smoke test logs in with. */
    adminEmail: pulumi.Input<string>;
    adminPassword: pulumi.Input<string>;
    /** The agent app to ask (`DifyAgentApp.appId`). */
    agentAppId: pulumi.Input<string>;
    /**
     * Whether a person has approved Alibaba Cloud's OAuth consent (`DifyMcpToolProvider.authorized`). Without it
     * every tool call fails, so the test stops at once saying so, with `authorizationUrl`.
     */
    mcpAuthorized: pulumi.Input<boolean>;
    authorizationUrl?: pulumi.Input<string | undefined>;
    /**
     * The values whose change means the agent's wiring changed; any change runs the test again (the command is
     * replaced). Default: the agent app, the Dify URL and `extraTriggers`.
     */
    extraTriggers?: pulumi.Input<unknown>[];
    /** Where the project is (`npm run smoke` runs there). Default: the program's working directory. */
    projectDir?: string;
}

/**
 * The opt-in smoke test at the end of `pulumi up` (`smokeTestOnUp`): `npm run --silent smoke` asks the agent
 * "Query the number of ECS instances in the Hangzhou region" and fails unless an MCP tool call succeeded, so a
 * GitOps deploy proves the agent works, not only that the resources exist. It runs where `up` runs, through
 * @pulumi/command's local.Command, which ties it into the graph (after the agent and the MCP authorization) and
 * runs it again only when a trigger changes: a second `up` is a no-op. The admin password reaches the command only
 * through its environment; stdout and stderr are kept as secret outputs.
 */
export class AgentSmokeTest extends pulumi.ComponentResource {
    /** What the smoke test printed (the tool calls and the answer); secret. */
    readonly output: pulumi.Output<string>;

    constructor(name: string, args: AgentSmokeTestArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:AgentSmokeTest", name, {}, opts);

        const run = new command.local.Command(
            `${name}-run`,
            {
                // A shell line without any interpolated value: everything variable travels in the environment.
                create: 'if [ "$DIFY_MCP_AUTHORIZED" != true ]; then echo "smoke test: the MCP server is not authorized yet; approve the consent at $DIFY_MCP_AUTHORIZATION_URL, then run pulumi up again" >&2; exit 1; fi; npm run --silent smoke',
                dir: args.projectDir ?? process.cwd(),
                environment: {
                    DIFY_URL: args.difyUrl,
                    DIFY_ADMIN_EMAIL: args.adminEmail,
                    DIFY_ADMIN_PASSWORD: pulumi.secret(args.adminPassword),
                    DIFY_AGENT_APP_ID: args.agentAppId,
                    DIFY_MCP_AUTHORIZED: pulumi.output(args.mcpAuthorized).apply((authorized) => String(authorized)),
                    DIFY_MCP_AUTHORIZATION_URL: pulumi.output(args.authorizationUrl).apply((url) => url ?? "(see the mcpAuthorizationUrl output)"),
                },
                triggers: [args.agentAppId, args.difyUrl, args.mcpAuthorized, ...(args.extraTriggers ?? [])],
                logging: "stdoutAndStderr",
            },
            { parent: this, additionalSecretOutputs: ["stdout", "stderr"] },
        );

        this.output = pulumi.secret(run.stdout);
        this.registerOutputs({ output: this.output });
    }
}
