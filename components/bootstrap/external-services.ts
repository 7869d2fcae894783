// What a node of the `ha` topology needs to know about the managed services it uses instead of Dify's own
// containers (RDS PostgreSQL with pgvector, Tair/Redis, OSS) and the secrets every node must share. The `single`
// topology uses none of this: its settings file, and so its user data and settings digest, stay as they were.
// components/bootstrap/userdata.ts renders these values into the `ha` node's settings file (DIFY_… lines, checked
// there: no control characters, hosts, names and keys of the shapes below) and components/bootstrap/ha-node.sh
// writes them into Dify's docker/.env. Secret values go only into the user data (a Pulumi secret) and the node's
// root-only files, never into the settings Pulumi sends through Cloud Assistant (renderBootstrapApplication).

/** The role of a node: `single` runs all of Dify; `app` and `singleton` are the two roles of the `ha` topology. */
export type DifyNodeRole = "single" | "app" | "singleton";

/**
 * Which of Dify's compose services each `ha` role runs. Everything else (db_postgres, redis, weaviate, pgvector, the
 * other vector stores, certbot) stays off: the managed services replace them.
 * - app: the stateless services behind the load balancer (the ESS group).
 * - singleton: what must run once (worker_beat, the plugin daemon, migrations through api's MIGRATION_ENABLED) plus
 *   its own api, not behind the load balancer, for the plugin daemon's calls back (PLUGIN_DIFY_INNER_API_URL).
 */
export const HA_ROLE_SERVICES: Readonly<Record<Exclude<DifyNodeRole, "single">, readonly string[]>> = {
    app: ["api", "worker", "web", "sandbox", "ssrf_proxy", "nginx"],
    singleton: ["api", "worker_beat", "plugin_daemon", "sandbox", "ssrf_proxy"],
};

/**
 * The port the singleton publishes its plugin daemon on (to the VPC; its security group admits only the app
 * vSwitches), so the one `pluginDaemonUrl` must name: the renderer refuses another.
 */
export const HA_PLUGIN_DAEMON_PORT = 5002;

/** RDS PostgreSQL: one account, Dify's database (which also holds pgvector's tables) and the plugin daemon's. */
export interface ExternalDatabase {
    /** The instance's private connection string (host name), e.g. pgm-xxxx.pg.rds.aliyuncs.com. */
    host: string;
    /** 1..65535, e.g. 5432. */
    port: number;
    /** A letter, then letters, digits or "_" (at most 63). */
    username: string;
    /** Secret; 8 to 128 letters, digits, "-", "_", ".", "~" (safe in a URL, a DSN and Dify's .env unquoted). */
    password: string;
    /** Dify's database (DB_DATABASE, and PGVECTOR_DATABASE: the vector store lives in the same database). */
    database: string;
    /** The plugin daemon's database (DB_PLUGIN_DATABASE). Both names: a letter, then letters, digits or "_". */
    pluginDatabase: string;
}

/** Tair/Redis master-replica: one endpoint (the plugin daemon supports neither Sentinel nor Cluster). */
export interface ExternalRedis {
    /** Private connection domain, e.g. r-xxxx.redis.rds.aliyuncs.com. */
    host: string;
    /** 1..65535, e.g. 6379. */
    port: number;
    /**
     * Secret; letters and digits (the renderer also takes "-", "_", ".", "~": URL-safe), so it goes into
     * CELERY_BROKER_URL without encoding.
     */
    password: string;
}

/** The private OSS bucket for Dify's files (STORAGE_TYPE aliyun-oss) and the plugin daemon's packages. */
export interface ExternalObjectStorage {
    /** The bucket name (3 to 63 lowercase letters, digits and "-"). Dify keeps its files under dify/, the plugin daemon under plugin-daemon/. */
    bucket: string;
    /** The region id, e.g. cn-hangzhou (ALIYUN_OSS_REGION; signature v4 needs it). */
    region: string;
    /** The VPC-internal endpoint, e.g. https://oss-cn-hangzhou-internal.aliyuncs.com (scheme and host, no path). */
    endpoint: string;
    /** The RAM user's AccessKey id (secret: it identifies the key); letters and digits. */
    accessKeyId: string;
    /** Secret. */
    accessKeySecret: string;
}

/**
 * Keys every node must share: each node generating its own (as `single` does) would break sessions and the daemon.
 * Each: 16 to 256 characters of base64 or URL-safe base64 (letters, digits, "+", "/", "=", "-", "_", ".", "~").
 */
export interface SharedDifySecrets {
    /** Dify's SECRET_KEY (session and token signing). Secret. */
    secretKey: string;
    /** PLUGIN_DAEMON_KEY / PLUGIN_DAEMON_SERVER_KEY: api → plugin daemon. Secret. */
    pluginDaemonKey: string;
    /** PLUGIN_DIFY_INNER_API_KEY / INNER_API_KEY_FOR_PLUGIN: plugin daemon → api. Secret. */
    pluginInnerApiKey: string;
}

/** Everything an `ha` node gets besides the settings `single` has. */
export interface ExternalServices {
    database: ExternalDatabase;
    redis: ExternalRedis;
    storage: ExternalObjectStorage;
    secrets: SharedDifySecrets;
    /**
     * Where app nodes reach the singleton's plugin daemon, e.g. http://plugin-daemon.dify-prod.internal:5002 (a
     * PrivateZone record that follows the singleton): http://<host>:5002 (HA_PLUGIN_DAEMON_PORT), no path. The
     * singleton itself uses its own container. App nodes' nginx also sends plugin endpoints (/e/) there.
     */
    pluginDaemonUrl: string;
}
