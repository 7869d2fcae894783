// CrossGuard policy pack for dify-mcp-stack: `pulumi preview --policy-pack policy` (after `npm ci --prefix policy`).
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

new PolicyPack("dify-mcp-stack-guardrails", {
    description: "Guardrails for dify-mcp-stack: network exposure (however the sources are spelled or split), HTTPS, " +
        "data disk encryption, instance size, Dify version, the RAM OAuth app",
    enforcementLevel: "mandatory",
    policies,
});
