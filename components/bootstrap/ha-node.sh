#!/usr/bin/env bash
# shellcheck shell=bash
# The `ha` topology's two node roles, app and singleton (DIFY_ROLE), on top of bootstrap.sh: userdata.ts ships
# bootstrap.sh with this file inserted before its final dispatch block, so the functions here replace bootstrap.sh's
# of the same name (in bash a later definition wins) and the dispatch runs this file's `main`. Everything else
# (retry, step, install_docker, configure_docker, fetch_dify and its verification, configure_dify_env,
# pull_images, wait_for_migrations, scrub_init_password) is bootstrap.sh's own. For the 16 KB cap, the shipped
# script leaves out bootstrap.sh's functions that this file redefines or an ha node never runs (the data disk's,
# the certificate's: userdata.ts's HA_DROPPED_FUNCTIONS).
# An ha node has no data disk: Dify's state is in RDS PostgreSQL (with pgvector), Tair/Redis and OSS, whose
# settings and the keys every node shares come as DIFY_… lines of the settings file (components/bootstrap/
# external-services.ts). Its volumes stay under /opt/dify/docker/volumes on the system disk. No certificate: the
# load balancer terminates TLS for https://<domain>, and nginx (app) serves plain HTTP on port 80 in the VPC.
# DIFY_SERVICES names the compose services of the role (HA_ROLE_SERVICES); every other service is turned off.

# The profile the compose override gives every service the role does not run; nothing ever enables it.
HA_OFF_PROFILE=dify-ha-off
# Where the singleton publishes its own api, for its console check only (it has no nginx).
HA_API_LOOPBACK=127.0.0.1:5001
# App nodes' copy of nginx's server template (see ha_nginx_template).
HA_NGINX_TEMPLATE=nginx-ha-default.conf.template

# No certificate on an ha node, whatever its https:// URL says: configure_dify_env then leaves nginx on plain
# HTTP without the ACME challenge, and pull_images pulls no certbot.
https_enabled() {
    return 1
}

# ha_runs SERVICE: whether the role runs SERVICE.
ha_runs() {
    [[ " $DIFY_SERVICES " == *" $1 "* ]]
}

# console_setup: GET /console/api/setup on this node: through nginx on port 80 (app), or from the singleton's
# own api, published on loopback only (the singleton has no nginx).
console_setup() {
    if [ "${DIFY_ROLE:-}" = singleton ]; then
        curl -fsS --max-time 10 "http://$HA_API_LOOPBACK/console/api/setup"
    else
        curl -fsS --max-time 10 http://127.0.0.1/console/api/setup
    fi
}

# write_ha_secrets FILE: the secrets file configure_dify_env reads, from the settings (the keys all nodes share,
# the database's and Redis's passwords) and this node's own sandbox key (kept once made). It holds the OSS key too,
# though configure_ha_env takes that from the settings: the bootstrap's status reader (dynamic-providers/dify/
# bootstrap-status.ts) redacts every value of this file (6 characters or more; the renderer takes none shorter
# than 8), at $DATA_MOUNT/dify/secrets.env (/data, here a directory of the system disk), from what leaves the node.
write_ha_secrets() {
    local file="$1" tmp sandbox="" weaviate=""
    mkdir -p "$(dirname "$file")"
    if [ -f "$file" ]; then
        sandbox="$(get_env_value "$file" SANDBOX_API_KEY)"
        weaviate="$(get_env_value "$file" WEAVIATE_API_KEY)"
    fi
    tmp="$(mktemp "$file.XXXXXX")"
    {
        printf 'SECRET_KEY=%s\n' "$DIFY_SECRET_KEY"
        printf 'DB_PASSWORD=%s\n' "$DIFY_DB_PASSWORD"
        printf 'REDIS_PASSWORD=%s\n' "$DIFY_REDIS_PASSWORD"
        printf 'SANDBOX_API_KEY=%s\n' "${sandbox:-$(random_hex 24)}"
        printf 'PLUGIN_DAEMON_KEY=%s\n' "$DIFY_PLUGIN_DAEMON_KEY"
        printf 'PLUGIN_DIFY_INNER_API_KEY=%s\n' "$DIFY_PLUGIN_INNER_API_KEY"
        # Not used (no Weaviate), but configure_dify_env sets it.
        printf 'WEAVIATE_API_KEY=%s\n' "${weaviate:-$(random_hex 24)}"
        printf 'ALIYUN_OSS_ACCESS_KEY=%s\n' "$DIFY_OSS_ACCESS_KEY_ID"
        printf 'ALIYUN_OSS_SECRET_KEY=%s\n' "$DIFY_OSS_ACCESS_KEY_SECRET"
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$file"
}

# configure_ha_env ENV_FILE: the managed services in Dify's .env, after configure_dify_env (URLs, shared keys,
# passwords). Dify's own PostgreSQL, Redis and vector store stay off: COMPOSE_PROFILES enables none of their
# profiles (the override turns off the rest). Files go to OSS under dify/, the plugin daemon's under plugin-daemon/.
# INTERNAL_FILES_URL: the plugin daemon and the workers fetch files from an api next to them rather than through
# the load balancer. Collaboration mode needs the api_websocket service, which no role runs.
configure_ha_env() {
    local env_file="$1" line migrate=false daemon="$DIFY_PLUGIN_DAEMON_URL"
    if [ "$DIFY_ROLE" = singleton ]; then
        migrate=true
        daemon=http://plugin_daemon:5002
        set_env_value "$env_file" PLUGIN_DIFY_INNER_API_URL http://api:5001
    fi
    if has_env_key "$env_file" ENABLE_COLLABORATION_MODE; then
        set_env_value "$env_file" ENABLE_COLLABORATION_MODE false
    fi
    while IFS= read -r line; do
        set_env_value "$env_file" "${line%%=*}" "${line#*=}" || return 1
    done <<EOF
COMPOSE_PROFILES=
DB_TYPE=postgresql
DB_HOST=$DIFY_DB_HOST
DB_PORT=$DIFY_DB_PORT
DB_USERNAME=$DIFY_DB_USERNAME
DB_DATABASE=$DIFY_DB_DATABASE
DB_PLUGIN_DATABASE=$DIFY_DB_PLUGIN_DATABASE
REDIS_HOST=$DIFY_REDIS_HOST
REDIS_PORT=$DIFY_REDIS_PORT
REDIS_USERNAME=
REDIS_DB=0
CELERY_BROKER_URL=redis://:$DIFY_REDIS_PASSWORD@$DIFY_REDIS_HOST:$DIFY_REDIS_PORT/1
STORAGE_TYPE=aliyun-oss
ALIYUN_OSS_BUCKET_NAME=$DIFY_OSS_BUCKET
ALIYUN_OSS_ACCESS_KEY=$DIFY_OSS_ACCESS_KEY_ID
ALIYUN_OSS_SECRET_KEY=$DIFY_OSS_ACCESS_KEY_SECRET
ALIYUN_OSS_ENDPOINT=$DIFY_OSS_ENDPOINT
ALIYUN_OSS_REGION=$DIFY_OSS_REGION
ALIYUN_OSS_AUTH_VERSION=v4
ALIYUN_OSS_PATH=dify
PLUGIN_STORAGE_TYPE=aliyun_oss
PLUGIN_STORAGE_OSS_BUCKET=$DIFY_OSS_BUCKET
PLUGIN_ALIYUN_OSS_REGION=$DIFY_OSS_REGION
PLUGIN_ALIYUN_OSS_ENDPOINT=$DIFY_OSS_ENDPOINT
PLUGIN_ALIYUN_OSS_ACCESS_KEY_ID=$DIFY_OSS_ACCESS_KEY_ID
PLUGIN_ALIYUN_OSS_ACCESS_KEY_SECRET=$DIFY_OSS_ACCESS_KEY_SECRET
PLUGIN_ALIYUN_OSS_AUTH_VERSION=v4
PLUGIN_ALIYUN_OSS_PATH=plugin-daemon
VECTOR_STORE=pgvector
PGVECTOR_HOST=$DIFY_DB_HOST
PGVECTOR_PORT=$DIFY_DB_PORT
PGVECTOR_USER=$DIFY_DB_USERNAME
PGVECTOR_PASSWORD=$DIFY_DB_PASSWORD
PGVECTOR_DATABASE=$DIFY_DB_DATABASE
INTERNAL_FILES_URL=http://api:5001
MIGRATION_ENABLED=$migrate
PLUGIN_DAEMON_URL=$daemon
EOF
}

# ha_nginx_template DOCKER_DIR: app nodes have no plugin daemon, and nginx refuses to start on a proxy_pass to a
# host it cannot resolve, as Dify's server template's `/e/` (plugin endpoints) to plugin_daemon:5002 would be. A
# copy of the template sends /e/ to DIFY_PLUGIN_DAEMON_URL (the singleton), resolved when a request comes
# (Docker's DNS, which asks the VPC's, so the PrivateZone record), not at start; write_ha_compose_override mounts it
# over the release's, which stays as released. Nothing when the release's template has no such line.
ha_nginx_template() {
    local template="$1/nginx/conf.d/default.conf.template" copy="$1/$HA_NGINX_TEMPLATE"
    rm -f "$copy"
    grep -q 'proxy_pass http://plugin_daemon:5002;' "$template" 2>/dev/null || return 0
    ENV_VALUE="$DIFY_PLUGIN_DAEMON_URL" awk '
        index($0, "proxy_pass http://plugin_daemon:5002;") {
            sub(/proxy_pass http:\/\/plugin_daemon:5002;/, "resolver 127.0.0.11 valid=30s ipv6=off; set $dify_plugin_daemon " ENVIRON["ENV_VALUE"] "; proxy_pass $dify_plugin_daemon;")
        }
        { print }
    ' "$template" >"$copy"
}

# write_ha_compose_override DOCKER_DIR: docker-compose.override.yaml (Compose reads it beside docker-compose.yaml,
# also for an operator's `docker compose` there) that leaves exactly the role's services in the project: every
# other service the release starts by default (redis, which has no profile, db_postgres or 1.8.0's db,
# init_permissions, the other role's services) gets the profile nobody enables, and the role's services forget
# their depends_on (`!reset`, Compose 2.24+), which names redis and the databases (nginx keeps its own: api and
# web, which app nodes run). Ports: the singleton publishes its plugin daemon's 5002 to the VPC (the security
# group admits the app vSwitches only) and its api on loopback for the console check, the debugging port on
# loopback as single does; an app node publishes nginx's port 80 only (no 443: no TLS on the node).
write_ha_compose_override() {
    local dir="$1" file="$1/docker-compose.override.yaml" services service
    rm -f "$file" "$1/$REDIRECT_CONF"
    services="$(compose config --services | sort)" || return 1
    if [ "$DIFY_ROLE" = app ]; then
        ha_nginx_template "$dir"
    fi
    {
        echo "services:"
        for service in $services; do
            printf '  %s:\n' "$service"
            if ! ha_runs "$service"; then
                printf '    profiles: !override [%s]\n' "$HA_OFF_PROFILE"
                continue
            fi
            [ "$service" = nginx ] || echo "    depends_on: !reset {}"
            case "$DIFY_ROLE:$service" in
                singleton:plugin_daemon)
                    cat <<'YAML'
    ports: !override
      - "5002:${PLUGIN_DAEMON_PORT:-5002}"
      - "127.0.0.1:${EXPOSE_PLUGIN_DEBUGGING_PORT:-5003}:${PLUGIN_DEBUGGING_PORT:-5003}"
YAML
                    ;;
                singleton:api) printf '    ports: !override\n      - "%s:5001"\n' "$HA_API_LOOPBACK" ;;
                app:nginx)
                    cat <<'YAML'
    ports: !override
      - "${EXPOSE_NGINX_PORT:-80}:${NGINX_PORT:-80}"
YAML
                    if [ -f "$dir/$HA_NGINX_TEMPLATE" ]; then
                        printf '    volumes:\n      - ./%s:/etc/nginx/conf.d/default.conf.template:ro\n' "$HA_NGINX_TEMPLATE"
                    fi
                    ;;
            esac
        done
    } >"$file"
}

# ha_check_services: the project Compose now sees runs exactly DIFY_SERVICES, or the bootstrap stops naming the
# difference (a release that renamed a service, or added one without a profile).
ha_check_services() {
    local found wanted
    found="$(compose config --services | sort | xargs)" || return 1
    wanted="$(tr " " "\n" <<<"$DIFY_SERVICES" | sort | xargs)"
    if [ "$found" != "$wanted" ]; then
        fail_with "the $DIFY_ROLE node's compose project runs \"$found\", not \"$wanted\" (DIFY_SERVICES)"
        return 1
    fi
}

# prepare_dify: Dify's docker/.env from the release's .env.example, the settings and the shared secrets, and the
# override that leaves the role's services. The storage volume gets the owner init_permissions (off) would give it:
# api and worker run as uid 1001 from 1.10.1.
prepare_dify() {
    local docker_dir="$DIFY_DIR/docker" secrets="$DATA_MOUNT/dify/secrets.env"
    mkdir -p "$docker_dir/volumes/app/storage"
    chown -R 1001:1001 "$docker_dir/volumes/app/storage"
    write_ha_secrets "$secrets"
    if [ ! -f "$docker_dir/.env" ]; then
        cp "$docker_dir/.env.example" "$docker_dir/.env"
    fi
    chmod 600 "$docker_dir/.env"
    configure_dify_env "$docker_dir/.env" "$secrets" "$DIFY_PUBLIC_URL"
    configure_ha_env "$docker_dir/.env"
    write_ha_compose_override "$docker_dir"
    ha_check_services
}

# start_dify: the role's images (pull_images pulls what the project has: the role's), then its services.
start_dify() {
    local services=()
    read -r -a services <<<"$DIFY_SERVICES"
    pull_images
    step "starting Dify"
    retry 3 30 compose up -d "${services[@]}"
}

# install_ha_units: dify-init-password.timer (scrub_init_password; see install_units), without the data disk's
# mount unit and docker.service drop-in: there is no disk to wait for.
install_ha_units() {
    mkdir -p "$SYSTEMD_DIR"
    printf '[Unit]\nAfter=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/bash %s scrub-init-password\n' \
        "$(readlink -f "$0")" >"$SYSTEMD_DIR/dify-init-password.service"
    printf '[Timer]\nOnBootSec=1min\nOnUnitActiveSec=1min\n[Install]\nWantedBy=timers.target\n' >"$SYSTEMD_DIR/dify-init-password.timer"
    systemctl daemon-reload
    systemctl enable --now dify-init-password.timer
}

# main: an ha node's bootstrap, run once per instance by cloud-init (an ha node is replaced, not re-applied, when
# its settings change). The singleton runs the database migrations (MIGRATION_ENABLED) and waits for them; app
# nodes start after it is ready (the app tier's order) and wait for the console through their nginx.
# create_vector_extension: pgvector in Dify's database, once, by the singleton, as the RDS (privileged) account.
# Dify would create it lazily at the first indexing, with a plain CREATE EXTENSION under a per-collection lock: two
# first indexings on two nodes would race, and a missing privilege would show only then. The api container has
# psycopg2 and the DB_* settings.
create_vector_extension() {
    # shellcheck disable=SC2016
    compose exec -T api python -c 'import os, psycopg2
c = psycopg2.connect(host=os.environ["DB_HOST"], port=os.environ["DB_PORT"], user=os.environ["DB_USERNAME"], password=os.environ["DB_PASSWORD"], dbname=os.environ["DB_DATABASE"])
c.autocommit = True
c.cursor().execute("CREATE EXTENSION IF NOT EXISTS vector")'
}

main() {
    mkdir -p "$STATE_DIR"
    rm -f "$STATE_DIR/done" "$STATE_DIR/failed"
    exec > >(tee -a "$LOG_FILE") 2>&1
    trap 'on_error "$LINENO"' ERR
    step "starting the bootstrap"
    # shellcheck source=/dev/null
    . "$CONFIG_FILE"
    case "${DIFY_ROLE:-}" in
        app | singleton) ;;
        *)
            fail_with "DIFY_ROLE is \"${DIFY_ROLE:-}\" in $CONFIG_FILE; this bootstrap is for the ha roles app and singleton"
            return 1
            ;;
    esac
    log "bootstrapping Dify $DIFY_VERSION, $DIFY_ROLE node ($DIFY_SERVICES), for $DIFY_PUBLIC_URL"

    step "installing Docker"
    retry 3 30 install_docker
    configure_docker
    install_ha_units
    step "fetching Dify $DIFY_VERSION"
    retry 3 30 fetch_dify "$DIFY_VERSION" "$DIFY_DIR"

    step "preparing Dify's settings"
    prepare_dify
    start_dify
    if [ "$DIFY_ROLE" = singleton ]; then
        wait_for_migrations
        step "creating pgvector in Dify's database"
        retry 5 10 create_vector_extension
    fi
    step "waiting for the console"
    wait_until 900 10 "Dify's console API answering" console_answers
    date -u +%Y-%m-%dT%H:%M:%SZ >"$STATE_DIR/done"
    set_status "done" "Dify is up" "Dify $DIFY_VERSION ($DIFY_ROLE node) at $DIFY_PUBLIC_URL"
    log "Dify $DIFY_VERSION ($DIFY_ROLE node) is up at $DIFY_PUBLIC_URL"
}
