// Setting Dify up and logging in: /setup, /init, /login, /refresh-token, /logout, and the check every
// login_required route runs (tokens in the JSON body and `Authorization: Bearer` before 1.9.2, cookies plus the
// X-CSRF-Token header from 1.9.2). /setup and /init are FastOpenAPI routes from 1.12.0.
import * as crypto from "crypto";
import { HttpError, parseCookies, Reply, Request, requireString, Router } from "./router";
import { ConsoleState } from "./state";
import { DifyAccount } from "./types";

/** Dify's valid_password: letters and digits, at least 8 characters. */
export const PASSWORD_RULE = /^(?=.*[a-zA-Z])(?=.*\d).{8,}$/;

interface Tokens {
    access: string;
    refresh: string;
    csrf: string;
}

/**
 * Python's base64.b64decode without validate (binascii.a2b_base64, non-strict): characters outside the alphabet
 * are skipped, decoding stops at complete padding, and leftover data characters fail ("Incorrect padding").
 * Undefined when Python would raise.
 */
function pythonBase64Decode(text: string): Buffer | undefined {
    let data = "";
    let quadPos = 0;
    let pads = 0;
    for (const char of text) {
        if (char === "=") {
            if (quadPos >= 2 && quadPos + ++pads >= 4) {
                return Buffer.from(data, "base64");
            }
            continue;
        }
        if (!/^[A-Za-z0-9+/]$/.test(char)) {
            continue;
        }
        data += char;
        pads = 0;
        quadPos = (quadPos + 1) & 3;
    }
    return quadPos === 0 ? Buffer.from(data, "base64") : undefined;
}

export class AuthRoutes {
    /** 1.9.2+: tokens travel in cookies and every login_required request needs the CSRF header. */
    private readonly cookieMode: boolean;
    /** 1.12.0+: /setup and /init are FastOpenAPI routes. */
    private readonly fastOpenApi: boolean;
    private readonly cookieNames: { access: string; refresh: string; csrf: string };
    /** Flask `session` cookies that passed POST /init. */
    private readonly initValidatedSessions = new Set<string>();
    private readonly accessTokens = new Map<string, { accountId: string; expired: boolean }>();
    private readonly refreshTokens = new Map<string, string>();
    private readonly csrfTokens = new Map<string, { accountId: string; expired: boolean }>();

    constructor(private readonly state: ConsoleState) {
        const options = state.options;
        this.cookieMode = state.atLeast("1.9.2");
        this.fastOpenApi = state.atLeast("1.12.0");
        const hostPrefix = options.secureCookies && (!state.atLeast("1.10.0") || !options.cookieDomain) ? "__Host-" : "";
        this.cookieNames = {
            access: `${hostPrefix}access_token`,
            refresh: `${hostPrefix}refresh_token`,
            csrf: `${hostPrefix}csrf_token`,
        };
    }

    register(router: Router): void {
        const fastOpenApi = this.fastOpenApi;
        const state = this.state;
        // From 1.12 the answer is SetupStatusResponse: setup_at is null before the setup.
        router.route("GET", "/setup", "auth", false, () => ({
            body: state.setupAt ? { step: "finished", setup_at: state.setupAt } : fastOpenApi ? { step: "not_started", setup_at: null } : { step: "not_started" },
        }), { fastOpenApi });
        router.route("POST", "/setup", "write", false, (req) => this.setup(req), { fastOpenApi });
        // get_init_validate_status: validated in this (Flask) session, or set up already.
        router.route("GET", "/init", "auth", false, (req) => ({
            body: { status: state.setupAt || !state.options.initPassword || this.initValidated(req) ? "finished" : "not_started" },
        }), { fastOpenApi });
        router.route("POST", "/init", "write", false, (req) => this.init(req), { fastOpenApi });
        router.route("POST", "/login", "auth", false, (req) => this.login(req));
        router.route("POST", "/refresh-token", "auth", false, (req) => this.refresh(req));
        router.route(this.cookieMode ? "POST" : "GET", "/logout", "auth", true, () => ({ body: { result: "success" } }));
    }

    // ext_login.load_user_from_request, then (1.9.2+) check_csrf_token: "Invalid Authorization token." without a
    // token, PassportService.verify's "Invalid token." / "Token has expired." for a bad one (1.14.1 texts; the
    // older versions keep "Unauthorized.", unverified).
    authenticate(req: Request): DifyAccount {
        const verified = this.state.atLeast("1.14.1");
        const unauthorized = (message: string) => new HttpError(401, "unauthorized", verified ? message : "Unauthorized.");
        const cookies = parseCookies(req.headers.cookie);
        const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
        const token = this.cookieMode ? (cookies.get(this.cookieNames.access) ?? bearer) : (bearer ?? req.query.get("_token") ?? undefined);
        if (!token) {
            throw unauthorized("Invalid Authorization token.");
        }
        const record = this.accessTokens.get(token);
        if (!record) {
            throw unauthorized("Invalid token.");
        }
        if (record.expired) {
            throw unauthorized("Token has expired.");
        }
        if (this.cookieMode) {
            const csrfCookie = cookies.get(this.cookieNames.csrf);
            const csrfHeader = req.headers["x-csrf-token"];
            const csrf = csrfCookie ? this.csrfTokens.get(csrfCookie) : undefined;
            if (!csrfCookie || csrfHeader !== csrfCookie || !csrf || csrf.expired || csrf.accountId !== record.accountId) {
                throw new HttpError(401, "unauthorized", "CSRF token is missing or invalid.");
            }
        }
        const account = this.state.accounts.find((a) => a.id === record.accountId);
        if (!account) {
            throw unauthorized("Invalid Authorization token.");
        }
        return account;
    }

    /** Test hook: access tokens and CSRF tokens expire (the next call gets 401 and must refresh). */
    expireAccessTokens(): void {
        for (const token of this.accessTokens.values()) {
            token.expired = true;
        }
        for (const token of this.csrfTokens.values()) {
            token.expired = true;
        }
    }

    /** Test hook: the Dify database was reset (no admin, not set up). */
    resetSetup(): void {
        this.state.accounts.length = 0;
        this.state.setupAt = undefined;
        this.accessTokens.clear();
        this.refreshTokens.clear();
        this.csrfTokens.clear();
    }

    // From 1.12 the payload is validated (pydantic, 422) before anything else, and only the status survives of
    // Dify's own errors (see fastOpenApiErrorBody).
    private setup(req: Request): Reply {
        const { state, fastOpenApi } = this;
        const validate = () => {
            const email = requireString(req, "email");
            const name = requireString(req, "name");
            const password = requireString(req, "password");
            if (name.length > 30) {
                throw new HttpError(fastOpenApi ? 422 : 400, "invalid_param", "name must be at most 30 characters");
            }
            if (!PASSWORD_RULE.test(password)) {
                throw new HttpError(fastOpenApi ? 422 : 400, "invalid_param", "Password must contain letters and numbers, and the length must be greater than 8.");
            }
            return { email, name, password };
        };
        const payload = fastOpenApi ? validate() : undefined;
        if (state.setupAt || state.accounts.length > 0) {
            throw new HttpError(403, "already_setup", "Dify has been successfully installed. Please refresh the page or return to the dashboard homepage.");
        }
        if (state.options.initPassword && !this.initValidated(req)) {
            throw new HttpError(401, "not_init_validated", "Init validation has not been completed yet. Please proceed with the init validation process first.");
        }
        const { email, name, password } = payload ?? validate();
        state.accounts.push({ id: crypto.randomUUID(), email: state.atLeast("1.11.3") ? email.toLowerCase() : email, name, password });
        state.setupAt = new Date().toISOString();
        return { status: 201, body: { result: "success" } };
    }

    private init(req: Request): Reply {
        const fastOpenApi = this.fastOpenApi;
        const password = fastOpenApi ? requireString(req, "password") : "";
        if (fastOpenApi && password.length > 30) {
            throw new HttpError(422, "invalid_param", "password: String should have at most 30 characters");
        }
        if (this.state.setupAt) {
            throw new HttpError(403, "already_setup", "Dify has been successfully installed.");
        }
        const sent = fastOpenApi ? password : requireString(req, "password");
        // Either way Flask's session cookie records the outcome (session["is_init_validated"] = True/False).
        const session = crypto.randomBytes(16).toString("hex");
        const cookie = `session=${session}; HttpOnly; Path=/`;
        if (sent.length > 30 || sent !== this.state.options.initPassword) {
            throw new HttpError(401, "init_validate_failed", "Init validation failed. Please check the password and try again.", {}, [cookie]);
        }
        this.initValidatedSessions.add(session);
        return { status: 201, body: { result: "success" }, setCookies: [cookie] };
    }

    // LoginApi.post: @decrypt_password_field runs first (1.11.2+: undecodable passwords fail without counting), then
    // the lockout check (login_error_rate_limit:<lower-cased email>), then authenticate, where an unknown email is
    // an AccountPasswordError like a wrong password from 1.14.1 (counted, 401 "Invalid email or password.").
    private login(req: Request): Reply {
        const state = this.state;
        const email = requireString(req, "email");
        const sent = requireString(req, "password");
        let password = sent;
        if (state.atLeast("1.11.2")) {
            // FieldEncryption.decrypt_field: base64.b64decode(...).decode("utf-8"), None (this error) when either fails.
            const undecodable = new HttpError(401, "authentication_failed", "Invalid encrypted data");
            const decoded = pythonBase64Decode(sent);
            if (!decoded) {
                throw undecodable;
            }
            try {
                password = new TextDecoder("utf-8", { fatal: true }).decode(decoded);
            } catch {
                throw undecodable;
            }
        }
        const failureKey = state.atLeast("1.14.1") ? email.toLowerCase() : email;
        const failures = state.loginFailures.get(failureKey) ?? 0;
        if (failures > 5) {
            throw new HttpError(429, "email_code_login_limit", "Too many incorrect password attempts. Please try again later.");
        }
        const fail = () => {
            state.loginFailures.set(failureKey, failures + 1);
            return new HttpError(401, "authentication_failed", "Invalid email or password.");
        };
        const account = this.findAccount(email);
        if (!account && state.atLeast("1.14.1")) {
            throw fail();
        }
        if (!account) {
            if (state.options.allowRegister) {
                return { body: { result: "fail", data: "register-token", code: "account_not_found" } };
            }
            throw new HttpError(400, "account_not_found", "Account not found.");
        }
        if (account.password !== password) {
            throw fail();
        }
        state.loginFailures.delete(failureKey);
        return this.loggedIn(account);
    }

    private refresh(req: Request): Reply {
        const token = this.cookieMode
            ? parseCookies(req.headers.cookie).get(this.cookieNames.refresh)
            : (req.json.refresh_token as string | undefined);
        if (!token && this.cookieMode) {
            return { status: 401, body: { result: "fail", message: "No refresh token provided" } };
        }
        const accountId = token ? this.refreshTokens.get(token) : undefined;
        const account = this.state.accounts.find((a) => a.id === accountId);
        if (!account) {
            return { status: 401, body: { result: "fail", message: "Invalid refresh token" } };
        }
        this.refreshTokens.delete(token as string);
        return this.loggedIn(account);
    }

    /** Whether this request's Flask `session` cookie passed POST /init. */
    private initValidated(req: Request): boolean {
        const session = parseCookies(req.headers.cookie).get("session");
        return session !== undefined && this.initValidatedSessions.has(session);
    }

    private findAccount(email: string): DifyAccount | undefined {
        const caseless = this.state.atLeast("1.11.3");
        return this.state.accounts.find((a) => (caseless ? a.email.toLowerCase() === email.toLowerCase() : a.email === email));
    }

    /** The answer of a login or refresh: new tokens as cookies (1.9.2+) or in the body. */
    private loggedIn(account: DifyAccount): Reply {
        const tokens = this.issueTokens(account);
        if (this.cookieMode) {
            return { body: { result: "success" }, setCookies: this.tokenCookies(tokens) };
        }
        return { body: { result: "success", data: { access_token: tokens.access, refresh_token: tokens.refresh } } };
    }

    private issueTokens(account: DifyAccount): Tokens {
        const access = `at-${crypto.randomBytes(16).toString("hex")}`;
        const refresh = `rt-${crypto.randomBytes(16).toString("hex")}`;
        const csrf = `csrf-${crypto.randomBytes(16).toString("hex")}`;
        this.accessTokens.set(access, { accountId: account.id, expired: false });
        this.refreshTokens.set(refresh, account.id);
        this.csrfTokens.set(csrf, { accountId: account.id, expired: false });
        return { access, refresh, csrf };
    }

    private tokenCookies(tokens: Tokens): string[] {
        const secure = this.state.options.secureCookies ? "; Secure" : "";
        return [
            `${this.cookieNames.access}=${tokens.access}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax${secure}`,
            `${this.cookieNames.refresh}=${tokens.refresh}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax${secure}`,
            `${this.cookieNames.csrf}=${tokens.csrf}; Path=/; Max-Age=3600; SameSite=Lax${secure}`,
        ];
    }
}
