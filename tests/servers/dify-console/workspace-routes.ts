// The logged-in account and its workspace: /account/profile, /account/name, /account/password and /workspaces.
import { PASSWORD_RULE } from "./auth-routes";
import { HttpError, invalidParam, Request, requireString, Router } from "./router";
import { ConsoleState } from "./state";
import { DifyAccount } from "./types";

export class WorkspaceRoutes {
    /** When the workspace was created: when the server started. */
    private readonly createdAt = Math.floor(Date.now() / 1000);

    constructor(private readonly state: ConsoleState) {}

    register(router: Router): void {
        router.route("GET", "/account/profile", "read", true, (req) => ({
            body: { id: req.account?.id, name: req.account?.name, email: req.account?.email },
        }));

        router.route("POST", "/account/name", "write", true, (req) => {
            const name = requireString(req, "name");
            if (name.length < 3 || name.length > 30) {
                throw invalidParam("name must be 3 to 30 characters");
            }
            (req.account as DifyAccount).name = name;
            return { body: { id: req.account?.id, name, email: req.account?.email } };
        });

        router.route("POST", "/account/password", "write", true, (req) => this.changePassword(req));

        // TenantService.create_owner_tenant_if_not_exist names the workspace after the first admin.
        router.route("GET", "/workspaces", "read", true, () => ({
            body: {
                workspaces: [
                    {
                        id: "tenant",
                        name: `${this.state.accounts[0]?.name ?? "workspace"}'s Workspace`,
                        plan: "sandbox",
                        status: "normal",
                        created_at: this.createdAt,
                        current: true,
                    },
                ],
            },
        }));
    }

    private changePassword(req: Request) {
        const account = req.account as DifyAccount;
        const current = req.json.password;
        const next = requireString(req, "new_password");
        if (next !== req.json.repeat_new_password) {
            throw new HttpError(400, "repeat_password_not_match", "New password and repeat password does not match.");
        }
        if (current !== account.password) {
            throw new HttpError(400, "current_password_incorrect", "Current password is incorrect.");
        }
        if (!PASSWORD_RULE.test(next)) {
            throw invalidParam("Password must contain letters and numbers, and the length must be greater than 8.");
        }
        account.password = next;
        return { body: { id: account.id, name: account.name, email: account.email } };
    }
}
