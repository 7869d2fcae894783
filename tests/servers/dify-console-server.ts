// A local stand-in for Dify's console API (`/console/api`), for every route the Dify providers and the smoke
// test use, parameterized by Dify version. It follows ../shared/reference/dify-console-api.md:
// - 1.8.0–1.9.1: login returns tokens in the JSON body, requests carry `Authorization: Bearer`;
// - 1.9.2+: login sets access_token/refresh_token/csrf_token cookies (`__Host-` names when secure), every
//   login_required request (GET included) needs the X-CSRF-Token header equal to the csrf cookie;
// - 1.11.2+: the login password must be base64(utf8); anything else fails ("Invalid encrypted data");
// - errors are `{code,message,status}`; ValueErrors (duplicates, not found) are 400 `invalid_param`; /setup and
//   /init are FastOpenAPI routes from 1.12.0: `{error:{type,message,status}}` with only the status kept (401
//   "Unauthorized", 403 "Forbidden", 422 for any invalid payload), never Dify's own code;
// - more than 5 failed logins lock the email (429); from 1.14.1 an unknown email fails like a wrong password;
// - MCP providers: masked server_url, OAuth `authorization_url` from mcp/auth, DCR before 1.10, preset client
//   from 1.10 (sending a client_id wipes the stored tokens, `authed` stays); a new server_url resets the
//   credentials (client included) unless the same PUT carries `authentication`; mcp/update lists tools only
//   with working tokens; once the MCP server revoked the grant (revokeMcpTokens), mcp/auth clears every
//   credential (services/tools/mcp_tools_manage_service.py, core/mcp/auth_client.py, controllers/console/
//   workspace/tool_providers.py ToolMCPAuthApi);
// - apps: /apps/<uuid:app_id> routes (any other id matches no route: werkzeug's HTML 404), a new agent-chat app
//   starts from the template (agent_mode disabled), listed newest first;
// - the agent chat stream has the shape of FunctionCallAgentRunner's (see dify-console/chat-stream.ts);
// - Dify 1.14.1 answers are checked against the real server by dify-console-server.agreement.test.ts: keep that
//   test passing when changing what this server answers for "1.14.1";
// - PUT /apps/<id> before 1.11 writes None for absent fields (use_icon_as_answer_icon is NOT NULL: HTTP 500);
// - an unreachable marketplace makes latest-versions answer 200 {"versions": {}} (Dify swallows the error);
// - every response carries X-Version. Every call is counted (reads, writes, auth) per route.
// - fault injection for lost answers: resetAfterNextWrite (applied, then the connection is reset) and
//   failNextRequests (a proxy's 502/503/504, nothing reaches Dify).
//
// The routes live in ./dify-console/, one file per route group; this file wires them to the HTTP server.
import { AppRoutes } from "./dify-console/app-routes";
import { AuthRoutes } from "./dify-console/auth-routes";
import { ConsoleHttpServer } from "./dify-console/http-server";
import { McpRoutes } from "./dify-console/mcp-routes";
import { ModelProviderRoutes } from "./dify-console/model-provider-routes";
import { PluginRoutes } from "./dify-console/plugin-routes";
import { Router } from "./dify-console/router";
import { ConsoleState } from "./dify-console/state";
import { seedTongyi } from "./dify-console/tongyi";
import { DifyConsoleServer, DifyConsoleServerOptions } from "./dify-console/types";
import { WorkspaceRoutes } from "./dify-console/workspace-routes";

export { TOOL_INVOKE_ERROR_TEXT } from "./dify-console/chat-stream";
export type * from "./dify-console/types";

export async function startDifyConsoleServer(options: DifyConsoleServerOptions): Promise<DifyConsoleServer> {
    const state = new ConsoleState(options);
    const auth = new AuthRoutes(state);
    const mcp = new McpRoutes(state);
    const apps = new AppRoutes(state);
    // Registration order is matching order.
    const router = new Router();
    auth.register(router);
    new WorkspaceRoutes(state).register(router);
    mcp.register(router);
    new PluginRoutes(state).register(router);
    new ModelProviderRoutes(state).register(router);
    apps.register(router);

    const http = new ConsoleHttpServer(state.version, router, (req) => auth.authenticate(req));
    state.baseUrl = await http.listen();

    return {
        url: state.baseUrl,
        options,
        accounts: state.accounts,
        mcpProviders: state.mcpProviders,
        apps: state.apps,
        plugins: state.plugins,
        modelCredentials: state.modelCredentials,
        defaultModels: state.defaultModels,
        calls: http.calls,
        bodies: http.bodies,
        loginFailures: state.loginFailures,
        isSetUp: () => state.setupAt !== undefined,
        count: (filter) => http.count(filter),
        resetCalls: () => http.resetCalls(),
        authorizeMcpProvider: (idOrIdentifier, tools) => mcp.authorize(idOrIdentifier, tools),
        revokeMcpTokens: (idOrIdentifier, tokenError) => mcp.revokeTokens(idOrIdentifier, tokenError),
        expireAccessTokens: () => auth.expireAccessTokens(),
        setChatScript: (script) => apps.setChatScript(script),
        seedTongyi: (apiKey) => seedTongyi(state, apiKey),
        setMcpServerReachable: (reachable) => {
            options.mcpServerReachable = reachable;
        },
        resetAfterNextWrite: (route) => http.resetAfterNextWrite(route),
        failNextRequests: (count, faultOptions) => http.failNextRequests(count, faultOptions),
        resetSetup: () => auth.resetSetup(),
        close: () => http.close(),
    };
}
