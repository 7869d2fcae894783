import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["tests/**/*.test.ts"],
        environment: "node",
        // Providers are exercised in child Node processes and local servers; give them room on 2 cores.
        testTimeout: 60_000,
        hookTimeout: 60_000,
        pool: "forks",
        env: {
            // Without this the Alibaba credential chain probes the ECS metadata address.
            ALIBABA_CLOUD_ECS_METADATA_DISABLED: "true",
            PULUMI_SKIP_UPDATE_CHECK: "true",
        },
    },
});
