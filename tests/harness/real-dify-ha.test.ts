// Dify 1.14.1's real API server as the `ha` topology runs it, on its managed services stood in for on 127.0.0.1
// (startDifyExternalServices in ./real-dify): an RDS-like PostgreSQL account that is not a superuser owns `dify`
// (which also holds pgvector's tables) and `dify_plugin`; the singleton creates pgvector and migrates once
// (`flask upgrade-db`, what api/docker/entrypoint.sh runs with MIGRATION_ENABLED=true); two app nodes
// (MIGRATION_ENABLED=false) share the database, Redis, storage and SECRET_KEY; Dify's own PGVector class stores and
// searches vectors as that account.
//
// Why the singleton creates pgvector (CREATE EXTENSION IF NOT EXISTS vector, as the RDS account, before migrating)
// instead of leaving it to Dify: Dify's PGVector runs `CREATE EXTENSION vector` (no IF NOT EXISTS) only when it
// creates its first collection, i.e. at the first knowledge-base indexing, in a worker of whichever app node, under
// a Redis lock per collection, so two first indexings at once can both try it and one fails; and a missing right
// would surface there rather than at bootstrap. pgvector is not a trusted extension (its control file has no
// `trusted`), so on plain PostgreSQL only a superuser may create it; ApsaraDB RDS lets its privileged account create
// it, which pgextwlist reproduces here. Once it exists, Dify checks pg_extension and never creates it again, and
// everything else Dify does needs no more than owning its database.
//
// pgvector missing is a failure naming Debian's package (postgresql-<major>-pgvector), never a skip.
import axios from "axios";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeLoginPassword } from "../../dynamic-providers/dify/session";
import { parseSetCookies, probeDify, setupDify } from "../../dynamic-providers/dify/transport";
import { DifyExternalServices, RealDify, startDifyExternalServices, startRealDify } from "./real-dify";

const ADMIN = { email: "ha.admin@example.com", name: "HA Admin", password: "Ha-Admin-Passw0rd-1" };

const consoleApi = (dify: RealDify) => axios.create({ baseURL: `${dify.url}/console/api`, validateStatus: () => true, timeout: 60_000 });

function cookiesOf(headers: Record<string, unknown>): Map<string, string> {
    const setCookie = headers["set-cookie"];
    return parseSetCookies(Array.isArray(setCookie) ? setCookie : setCookie ? [String(setCookie)] : []);
}

/** Alembic's "Running upgrade <from> -> <to>" lines: one per migration applied. */
function appliedMigrations(output: string): string[] {
    return output.split("\n").filter((line) => /Running upgrade .* -> /.test(line));
}

/** Every column of every table in Dify's schema: equal before and after means no migration changed anything. */
const SCHEMA_FINGERPRINT = `select md5(string_agg(table_name || '.' || column_name || ':' || data_type || ':' || is_nullable, ',' order by table_name, column_name))
    from information_schema.columns where table_schema = 'public'`;

// Dify's own code, configured only from the environment the app nodes get (VECTOR_STORE=pgvector, PGVECTOR_*):
// the backend registry resolves VECTOR_STORE to the pgvector package's factory, which builds PGVector from
// dify_config. Three texts with fixed 3-dimensional embeddings (no model), then a search by vector.
const PGVECTOR_SCRIPT = String.raw`
import json, sys, types, uuid
from flask import Flask
from configs import dify_config
from extensions import ext_redis
from core.rag.datasource.vdb.vector_backend_registry import get_vector_factory_class
from core.rag.models.document import Document

# PGVector takes a Redis lock around creating a collection: Dify's client, initialised as the app does.
ext_redis.init_app(Flask("pgvector-check"))
factory = get_vector_factory_class(dify_config.VECTOR_STORE)
# What init_vector reads of a dataset: its id (the collection's name) and index_struct (none yet).
dataset = types.SimpleNamespace(id=str(uuid.uuid4()), index_struct=None, index_struct_dict=None)
vector = factory().init_vector(dataset, [], None)
texts = {"north": [1.0, 0.0, 0.0], "east": [0.0, 1.0, 0.0], "up": [0.0, 0.0, 1.0]}
documents = [Document(page_content=text, metadata={"doc_id": str(uuid.uuid4()), "document_id": "doc-" + text}) for text in texts]
vector.create(documents, list(texts.values()))
hits = vector.search_by_vector([0.9, 0.2, 0.1], top_k=2)
json.dump({
    "factory": factory.__module__ + "." + factory.__name__,
    "vectorClass": type(vector).__module__ + "." + type(vector).__name__,
    "config": {"user": dify_config.PGVECTOR_USER, "database": dify_config.PGVECTOR_DATABASE, "port": dify_config.PGVECTOR_PORT},
    "table": vector.table_name,
    "hits": [{"text": hit.page_content, "score": hit.metadata["score"]} for hit in hits],
    "exists": vector.text_exists(documents[1].metadata["doc_id"]),
}, sys.stdout)
`;

describe("Dify on the ha topology's managed services: an RDS-like PostgreSQL with pgvector, shared Redis", () => {
    let services: DifyExternalServices;
    let nodes: RealDify[] = [];
    let firstMigration: { code: number | null; output: string; seconds: number };
    let extensionSeconds = 0;
    // A set-up failure (pgvector missing, above all) fails every test with its message: vitest would report the
    // tests of a suite whose beforeAll threw as skipped.
    let setupFailure: Error | undefined;
    const ready = () => {
        if (setupFailure) {
            throw setupFailure;
        }
    };

    beforeAll(async () => {
        try {
            await setUp();
        } catch (err) {
            setupFailure = err as Error;
        }
    }, 1_200_000);

    async function setUp(): Promise<void> {
        services = await startDifyExternalServices();
        console.log(`external services timings (s): ${JSON.stringify(services.timings)}`);

        // The singleton, in the order its bootstrap runs: pgvector first, then Dify's migrations.
        const started = Date.now();
        await services.sql("CREATE EXTENSION IF NOT EXISTS vector", { as: "account" });
        extensionSeconds = (Date.now() - started) / 1000;
        firstMigration = await services.flask(["upgrade-db"]);
        console.log(`singleton: CREATE EXTENSION ${extensionSeconds} s, flask upgrade-db ${firstMigration.seconds} s (${appliedMigrations(firstMigration.output).length} migrations)`);
        if (firstMigration.code !== 0) {
            throw new Error(`flask upgrade-db failed (${firstMigration.code}):\n${firstMigration.output.split("\n").slice(-40).join("\n")}`);
        }

        // Two app nodes at once, as the scaling group starts them once the singleton is ready.
        const results = await Promise.allSettled([
            startRealDify({ externalServices: services, pluginDaemon: false }),
            startRealDify({ externalServices: services, pluginDaemon: false }),
        ]);
        nodes = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
        for (const node of nodes) {
            console.log(`app node ${node.url} timings (s): ${JSON.stringify(node.timings)}`);
        }
        const failed = results.find((result) => result.status === "rejected") as PromiseRejectedResult | undefined;
        if (failed) {
            throw failed.reason;
        }
    }

    afterAll(async () => {
        await Promise.all(nodes.map((node) => node.close()));
        await services?.close();
    }, 120_000);

    it("gives Dify an account that is not a superuser, owns empty `dify` and `dify_plugin`, and may create pgvector only as RDS allows", async () => {
        ready();
        const { account } = services.postgres;
        expect(await services.sql("select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = current_user", { as: "account" })).toBe("f|f|f");
        expect(await services.sql(`select datname, pg_get_userbyid(datdba) from pg_database where datname in ('dify', 'dify_plugin') order by datname`)).toBe(
            `dify|${account}\ndify_plugin|${account}`,
        );
        expect(await services.sql("select count(*) from pg_tables where schemaname = 'public'", { database: "dify_plugin" })).toBe("0");
        // pgvector as installed is not a trusted extension: plain PostgreSQL lets only a superuser create it ...
        const vector = await services.sql("select version, superuser, trusted from pg_available_extension_versions where name = 'vector' and version = (select default_version from pg_available_extensions where name = 'vector')");
        console.log(`pgvector available: ${vector}`);
        expect(vector).toMatch(/^\d+\.\d+\.\d+\|t\|f$/);
        // ... so an account that merely owns its database is refused ...
        await services.sql("CREATE ROLE dify_plain NOSUPERUSER");
        try {
            await services.sql("CREATE DATABASE dify_plain OWNER dify_plain TEMPLATE template0");
            const refused = await services.sql("SET ROLE dify_plain; CREATE EXTENSION vector", { database: "dify_plain" }).catch((err: Error) => err.message);
            expect(refused).toMatch(/permission denied to create extension "vector"/);
        } finally {
            await services.sql("DROP DATABASE IF EXISTS dify_plain WITH (FORCE)");
            await services.sql("DROP ROLE dify_plain");
        }
        // ... while the RDS account may create it (the singleton did, in beforeAll), and no other untrusted one.
        const other = await services.sql("CREATE EXTENSION dblink", { as: "account" }).catch((err: Error) => err.message);
        expect(other).toMatch(/permission denied to create extension "dblink"/);
        // Logins need the account's password (Dify's DB_PASSWORD and PGVECTOR_PASSWORD are really used).
        expect(services.env.DB_PASSWORD).toBe(services.postgres.password);
        expect(services.env.PGVECTOR_PASSWORD).toBe(services.postgres.password);
    });

    it("has pgvector in Dify's database, created once by the singleton as the RDS account", async () => {
        ready();
        expect(await services.sql("select extname, extversion from pg_extension where extname = 'vector'")).toMatch(/^vector\|\d+\.\d+\.\d+$/);
        // A replaced singleton runs the same statement again: a no-op.
        await services.sql("CREATE EXTENSION IF NOT EXISTS vector", { as: "account" });
        expect(await services.sql("select count(*) from pg_extension where extname = 'vector'")).toBe("1");
    });

    it("migrates the empty database from the singleton with flask upgrade-db, as the account, under Dify's Redis lock", async () => {
        ready();
        expect(firstMigration.code).toBe(0);
        expect(firstMigration.output).toContain("Database migration successful!");
        const applied = appliedMigrations(firstMigration.output);
        // From the very first migration (the database was empty) to the release's head.
        expect(applied[0]).toMatch(/Running upgrade {2}-> 64b051264f32/);
        expect(applied.at(-1)).toContain(`-> ${services.alembicHead}`);
        expect(applied.length).toBeGreaterThan(150);
        expect(await services.sql("select version_num from alembic_version")).toBe(services.alembicHead);
        // Every table is the account's (what RDS would show), and the lock is released.
        const { account } = services.postgres;
        expect(Number(await services.sql("select count(*) from pg_tables where schemaname = 'public'"))).toBeGreaterThan(100);
        expect(await services.sql(`select string_agg(tablename, ',') from pg_tables where schemaname = 'public' and tableowner <> '${account}'`)).toBe("");
        expect(await services.redis("exists", "db_upgrade_lock")).toBe("0");
    });

    it("serves from two app nodes that never migrate: both answer ping, setup through one is seen by the other, a session works on both", async () => {
        ready();
        const [first, second] = nodes;
        for (const node of nodes) {
            expect(node.env.MIGRATION_ENABLED).toBe("false");
            expect(node.env.DB_USERNAME).toBe(services.postgres.account);
            expect(node.databaseName).toBe("dify");
            const ping = await consoleApi(node).get("/ping");
            expect(ping.status).toBe(200);
            expect(ping.data).toEqual({ result: "pong" });
        }
        expect(first.env.SECRET_KEY).toBe(second.env.SECRET_KEY);
        expect(await probeDify({ url: second.url })).toEqual({ version: "1.14.1", setupStep: "not_started" });

        await setupDify({ url: first.url }, await probeDify({ url: first.url }), ADMIN);
        expect(await probeDify({ url: second.url })).toEqual({ version: "1.14.1", setupStep: "finished" });
        expect(await services.sql(`select count(*) from accounts where email = '${ADMIN.email}'`)).toBe("1");

        // The load balancer may send a user's next request to the other node: a login on one is a session on both.
        const login = await consoleApi(second).post("/login", { email: ADMIN.email, password: encodeLoginPassword("1.14.1", ADMIN.password), remember_me: true });
        expect(login.status).toBe(200);
        const cookies = cookiesOf(login.headers);
        const headers = { Cookie: `access_token=${cookies.get("access_token")}; csrf_token=${cookies.get("csrf_token")}`, "X-CSRF-Token": cookies.get("csrf_token")! };
        for (const node of nodes) {
            const profile = await consoleApi(node).get("/account/profile", { headers });
            expect(profile.status).toBe(200);
            expect(profile.data).toMatchObject({ email: ADMIN.email });
        }
        // Nobody migrated again.
        expect(await services.sql("select count(*) || '|' || max(version_num) from alembic_version")).toBe(`1|${services.alembicHead}`);
    });

    it("stores and searches vectors with Dify's own PGVector, configured from the app nodes' settings, as the account", async () => {
        ready();
        const pgvectorSettings = ["VECTOR_STORE", "PGVECTOR_HOST", "PGVECTOR_PORT", "PGVECTOR_USER", "PGVECTOR_PASSWORD", "PGVECTOR_DATABASE"];
        const nodeSettings = Object.fromEntries(pgvectorSettings.map((name) => [name, nodes[0].env[name]]));
        expect(nodeSettings).toEqual({
            VECTOR_STORE: "pgvector",
            PGVECTOR_HOST: "127.0.0.1",
            PGVECTOR_PORT: String(services.postgres.port),
            PGVECTOR_USER: services.postgres.account,
            PGVECTOR_PASSWORD: services.postgres.password,
            PGVECTOR_DATABASE: "dify",
        });
        const started = Date.now();
        const result = JSON.parse(await services.runPython(PGVECTOR_SCRIPT, { env: nodeSettings })) as {
            factory: string;
            vectorClass: string;
            config: { user: string; database: string; port: number };
            table: string;
            hits: { text: string; score: number }[];
            exists: boolean;
        };
        console.log(`Dify's PGVector: ${(Date.now() - started) / 1000} s, ${JSON.stringify(result)}`);
        expect(result.factory).toBe("dify_vdb_pgvector.pgvector.PGVectorFactory");
        expect(result.vectorClass).toBe("dify_vdb_pgvector.pgvector.PGVector");
        expect(result.config).toEqual({ user: services.postgres.account, database: "dify", port: services.postgres.port });
        // Nearest first: [0.9, 0.2, 0.1] is closest to "north", then "east".
        expect(result.hits.map((hit) => hit.text)).toEqual(["north", "east"]);
        expect(result.hits[0].score).toBeGreaterThan(result.hits[1].score);
        expect(result.exists).toBe(true);
        // The collection is a table in Dify's database, the account's, with its HNSW index.
        const table = result.table.toLowerCase();
        expect(await services.sql(`select tableowner from pg_tables where tablename = '${table}'`)).toBe(services.postgres.account);
        expect(await services.sql(`select count(*) from ${table}`)).toBe("3");
        expect(await services.sql(`select indexdef from pg_indexes where tablename = '${table}' and indexdef like '%hnsw%'`)).toContain("vector_cosine_ops");
        expect(services.refusedConnections()).toEqual([]);
    }, 300_000);

    it("lets a replaced singleton run flask upgrade-db again: nothing changes, the nodes keep serving", async () => {
        ready();
        const before = await services.sql(SCHEMA_FINGERPRINT);
        const again = await services.flask(["upgrade-db"]);
        console.log(`second flask upgrade-db: ${again.seconds} s`);
        expect(again.code).toBe(0);
        expect(again.output).toContain("Database migration successful!");
        expect(appliedMigrations(again.output)).toEqual([]);
        expect(await services.sql(SCHEMA_FINGERPRINT)).toBe(before);
        expect(await services.sql("select count(*) || '|' || max(version_num) from alembic_version")).toBe(`1|${services.alembicHead}`);
        for (const node of nodes) {
            expect((await consoleApi(node).get("/ping")).status).toBe(200);
            expect(node.refusedConnections()).toEqual([]);
        }
    }, 600_000);
});
