import { HostedProvider, startHostedProvider } from "../harness/engine-provider";
import { AlibabaApiServer, startAlibabaApiServer } from "./alibaba-api-server";

/** A local Alibaba API server and one provider hosted the engine's way, signing with the server's key pair. */
export interface AlibabaProviderFixture {
    server: AlibabaApiServer;
    provider: HostedProvider;
    close(): Promise<void>;
}

export async function startAlibabaProviderFixture(options: {
    module: string;
    exportName: string;
    accessKeyId: string;
    accessKeySecret: string;
}): Promise<AlibabaProviderFixture> {
    const server = await startAlibabaApiServer({ accessKeyId: options.accessKeyId, accessKeySecret: options.accessKeySecret });
    const provider = await startHostedProvider({
        module: options.module,
        exportName: options.exportName,
        env: {
            ALIBABA_CLOUD_ACCESS_KEY_ID: options.accessKeyId,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET: options.accessKeySecret,
            // Real backoff, tiny delays: retries are exercised without slowing the suite.
            ALIBABA_API_RETRY_MAX_ATTEMPTS: "4",
            ALIBABA_API_RETRY_BASE_DELAY_MS: "1",
            ALIBABA_API_RETRY_MAX_DELAY_MS: "5",
        },
    });
    return {
        server,
        provider,
        async close() {
            await provider.close();
            await server.close();
        },
    };
}
