#!/usr/bin/env bash
# Dify bootstrap for an Alibaba Cloud ECS instance, run once per instance by cloud-init.
# Settings come from /etc/dify-bootstrap/bootstrap.env (written by the same user data). Secrets for Dify are
# generated here, on the instance, and kept on the data disk so a rebuilt instance reuses them with its data.
# Success leaves /var/lib/dify-bootstrap/done; failure leaves /var/lib/dify-bootstrap/failed with the reason.
# Everything is logged to /var/log/dify-bootstrap.log.
set -Eeuo pipefail

CONFIG_FILE="${DIFY_BOOTSTRAP_CONFIG:-/etc/dify-bootstrap/bootstrap.env}"
STATE_DIR="${DIFY_BOOTSTRAP_STATE_DIR:-/var/lib/dify-bootstrap}"
LOG_FILE="${DIFY_BOOTSTRAP_LOG:-/var/log/dify-bootstrap.log}"
# Paths are overridable so tests can run the functions in a scratch directory.
DATA_MOUNT="${DIFY_BOOTSTRAP_DATA_MOUNT:-/data}"
DIFY_DIR="${DIFY_BOOTSTRAP_DIFY_DIR:-/opt/dify}"
DISK_BY_ID_DIR="${DIFY_BOOTSTRAP_DISK_BY_ID:-/dev/disk/by-id}"
DOCKER_ETC="${DIFY_BOOTSTRAP_DOCKER_ETC:-/etc/docker}"
SYSTEMD_DIR="${DIFY_BOOTSTRAP_SYSTEMD_DIR:-/etc/systemd/system}"
DOCKER_MIRROR_INTERNAL=http://mirrors.cloud.aliyuncs.com/docker-ce
DOCKER_MIRROR_PUBLIC=https://mirrors.aliyun.com/docker-ce

log() {
    printf '%s dify-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

# retry ATTEMPTS DELAY_SECONDS COMMAND...: runs COMMAND until it succeeds or ATTEMPTS are used up.
# bash ignores `set -e` inside a command run as a condition, so retried functions check each step themselves.
retry() {
    local attempts="$1" delay="$2" n=1
    shift 2
    until "$@"; do
        if [ "$n" -ge "$attempts" ]; then
            log "giving up after $n attempts: $*"
            return 1
        fi
        log "attempt $n of $attempts failed, retrying in ${delay}s: $*"
        sleep "$delay"
        n=$((n + 1))
    done
}

# wait_until SECONDS INTERVAL WHAT COMMAND...: re-runs COMMAND every INTERVAL seconds until it succeeds, or
# logs that WHAT did not happen within SECONDS and fails.
wait_until() {
    local limit="$1" interval="$2" what="$3" waited=0
    shift 3
    until "$@"; do
        if [ "$waited" -ge "$limit" ]; then
            log "$what did not happen within ${limit}s"
            return 1
        fi
        sleep "$interval"
        waited=$((waited + interval))
    done
}

# set_env_value FILE KEY VALUE: sets KEY=VALUE in a dotenv file, replacing every "KEY=" line or appending one.
# The value travels through the environment, so "/", "&", "\" and "=" reach the file unchanged
# (awk -v and sed would interpret them). A line break in the value would start a line of its own, a setting
# nobody chose, so a value with a newline or carriage return is refused (the value is not logged: it may be a
# secret), as is a key that is not a plain variable name.
set_env_value() {
    local file="$1" key="$2" value="$3" tmp
    case "$key" in
        '' | [0-9]* | *[!A-Za-z0-9_]*)
            log "set_env_value: refusing the key \"$key\" for $file: allowed are letters, digits and _" >&2
            return 1
            ;;
    esac
    case "$value" in
        *$'\n'* | *$'\r'*)
            log "set_env_value: refusing the value for $key in $file: it contains a newline or carriage return" >&2
            return 1
            ;;
        *'$'*)
            # Compose interpolates $ in .env values: the container would receive something else.
            log "set_env_value: refusing the value for $key in $file: it contains \$, which Compose would expand" >&2
            return 1
            ;;
    esac
    tmp=$(mktemp "${file}.XXXXXX")
    ENV_KEY="$key" ENV_VALUE="$value" awk '
        BEGIN { key = ENVIRON["ENV_KEY"]; value = ENVIRON["ENV_VALUE"]; found = 0 }
        index($0, key "=") == 1 { print key "=" value; found = 1; next }
        { print }
        END { if (!found) print key "=" value }
    ' "$file" >"$tmp"
    cat "$tmp" >"$file"
    rm -f "$tmp"
}

# get_env_value FILE KEY: prints the value of the first "KEY=" line, or nothing.
get_env_value() {
    ENV_KEY="$2" awk 'BEGIN { key = ENVIRON["ENV_KEY"] } index($0, key "=") == 1 { print substr($0, length(key) + 2); exit }' "$1"
}

has_env_key() {
    grep -q "^$2=" "$1"
}

random_hex() {
    openssl rand -hex "$1"
}

# load_or_create_secrets FILE: the secrets Dify's .env needs, generated once and reused afterwards.
load_or_create_secrets() {
    local file="$1"
    if [ ! -s "$file" ]; then
        log "generating Dify secrets in $file"
        umask 077
        {
            printf 'SECRET_KEY=%s\n' "$(openssl rand -base64 42 | tr -d '\n')"
            printf 'DB_PASSWORD=%s\n' "$(random_hex 16)"
            printf 'REDIS_PASSWORD=%s\n' "$(random_hex 16)"
            printf 'SANDBOX_API_KEY=%s\n' "$(random_hex 24)"
            printf 'PLUGIN_DAEMON_KEY=%s\n' "$(random_hex 32)"
            printf 'PLUGIN_DIFY_INNER_API_KEY=%s\n' "$(random_hex 32)"
            printf 'WEAVIATE_API_KEY=%s\n' "$(random_hex 24)"
        } >"$file"
        chmod 600 "$file"
    else
        log "reusing the Dify secrets kept in $file"
    fi
}

# configure_dify_env ENV_FILE SECRETS_FILE PUBLIC_URL: edits Dify's docker/.env in place. Only the keys named
# here change; every other line stays as Dify shipped it.
configure_dify_env() {
    local env_file="$1" secrets_file="$2" public_url="$3" key value socket_url broker rest
    for key in CONSOLE_API_URL CONSOLE_WEB_URL SERVICE_API_URL APP_API_URL APP_WEB_URL FILES_URL; do
        set_env_value "$env_file" "$key" "$public_url"
    done
    # Newer releases (1.14+) carry more public URLs; set them only where the release has them.
    if has_env_key "$env_file" TRIGGER_URL; then
        set_env_value "$env_file" TRIGGER_URL "$public_url"
    fi
    if has_env_key "$env_file" ENDPOINT_URL_TEMPLATE; then
        set_env_value "$env_file" ENDPOINT_URL_TEMPLATE "${public_url}/e/{hook_id}"
    fi
    if has_env_key "$env_file" NEXT_PUBLIC_SOCKET_URL; then
        socket_url="ws${public_url#http}"
        set_env_value "$env_file" NEXT_PUBLIC_SOCKET_URL "$socket_url"
    fi

    for key in SECRET_KEY DB_PASSWORD REDIS_PASSWORD SANDBOX_API_KEY PLUGIN_DAEMON_KEY PLUGIN_DIFY_INNER_API_KEY WEAVIATE_API_KEY; do
        value="$(get_env_value "$secrets_file" "$key")"
        if [ -z "$value" ]; then
            log "secret $key is missing from $secrets_file"
            return 1
        fi
        set_env_value "$env_file" "$key" "$value"
    done
    # Settings that must repeat a secret set above.
    set_env_value "$env_file" CODE_EXECUTION_API_KEY "$(get_env_value "$secrets_file" SANDBOX_API_KEY)"
    set_env_value "$env_file" WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS "$(get_env_value "$secrets_file" WEAVIATE_API_KEY)"
    broker="$(get_env_value "$env_file" CELERY_BROKER_URL)"
    if [ -n "$broker" ]; then
        rest="${broker#*@}"
        set_env_value "$env_file" CELERY_BROKER_URL "redis://:$(get_env_value "$secrets_file" REDIS_PASSWORD)@${rest}"
    fi

    set_env_value "$env_file" INIT_PASSWORD "$DIFY_INIT_PASSWORD"
    # Must stay a bare port (see write_compose_override); bootstraps before it wrote "127.0.0.1:5003" here.
    case "$(get_env_value "$env_file" EXPOSE_PLUGIN_DEBUGGING_PORT)" in
        *[!0-9]*) set_env_value "$env_file" EXPOSE_PLUGIN_DEBUGGING_PORT 5003 ;;
    esac
    if [ -n "${DIFY_PIP_MIRROR_URL:-}" ]; then
        set_env_value "$env_file" PIP_MIRROR_URL "$DIFY_PIP_MIRROR_URL"
    fi
    if [ -n "${DIFY_DOMAIN:-}" ]; then
        set_env_value "$env_file" NGINX_SERVER_NAME "$DIFY_DOMAIN"
        set_env_value "$env_file" NGINX_ENABLE_CERTBOT_CHALLENGE true
        set_env_value "$env_file" CERTBOT_DOMAIN "$DIFY_DOMAIN"
        set_env_value "$env_file" CERTBOT_EMAIL "$DIFY_CERT_EMAIL"
        set_env_value "$env_file" NGINX_SSL_CERT_FILENAME fullchain.pem
        set_env_value "$env_file" NGINX_SSL_CERT_KEY_FILENAME privkey.pem
    fi
}

# write_compose_override DOCKER_DIR: keeps the plugin daemon's debugging port on loopback (it is also closed in
# the security group). Compose reads docker-compose.override.yaml beside docker-compose.yaml by itself, also for
# an operator's `docker compose` there. EXPOSE_PLUGIN_DEBUGGING_PORT must stay a bare port: Dify also passes it
# to the api as PLUGIN_REMOTE_INSTALL_PORT, a PositiveInt, and "127.0.0.1:5003" there crash-loops the api.
# `!override` (Compose 2.24+) replaces the release's port list, whose "5003:5003" would bind 0.0.0.0.
write_compose_override() {
    local file="$1/docker-compose.override.yaml"
    if ! has_env_key "$1/.env" EXPOSE_PLUGIN_DEBUGGING_PORT; then
        rm -f "$file"
        return 0
    fi
    cat >"$file" <<'YAML'
services:
  plugin_daemon:
    ports: !override
      - "127.0.0.1:${EXPOSE_PLUGIN_DEBUGGING_PORT:-5003}:${PLUGIN_DEBUGGING_PORT:-5003}"
YAML
}

# find_data_disk SERIAL: the block device of the data disk. Alibaba exposes the disk id (without "d-") as the
# virtio serial or inside the NVMe id, so the disk is found by what Pulumi created, not by position.
find_data_disk() {
    local serial="$1" link
    for link in "$DISK_BY_ID_DIR"/*; do
        case "$link" in
            *"$serial"*)
                case "$link" in *-part*) continue ;; esac
                readlink -f "$link"
                return 0
                ;;
        esac
    done
    return 1
}

data_disk_present() {
    find_data_disk "$1" >/dev/null
}

# disk_state DEVICE: "blank" when nothing on the disk carries a signature: blkid's low-level probe (-p: file
# systems, RAID, LUKS, LVM and partition tables; exit 2 when it finds none), wipefs (every magic string it knows)
# and lsblk (partitions or holders under the disk) must all come back empty. "ext4" or "xfs" for a disk with just
# that file system on the whole disk (ours: the bootstrap formats it so, and a rebuilt instance finds it again).
# Anything else prints what the disk carries, and the caller refuses the disk.
disk_state() {
    local rc=0 probe sigs parts
    probe="$(blkid -p -o export "$1")" || rc=$?
    # In $(...) set -e does not apply: a failed listing must not pass for an empty one.
    sigs="$(wipefs -n -i -O TYPE "$1" | sort -u | xargs)" || return 1
    parts="$(lsblk -nro NAME "$1" | sed 1d | xargs)" || return 1
    if [ "$rc" = 2 ] && [ -z "$sigs$parts" ]; then
        echo blank
    elif [ "$rc" = 0 ] && [ -z "$parts" ] && [[ $sigs =~ ^(ext4|xfs)$ ]] && grep -qx "TYPE=$sigs" <<<"$probe"; then
        echo "$sigs"
    else
        echo "signatures: ${sigs:-none}, partitions: ${parts:-none}, blkid -p exit $rc"
    fi
}

# fail_with MESSAGE: logs why the bootstrap stops and leaves it in the failed marker (on_error adds the line).
fail_with() {
    log "$*"
    echo "$*" >>"$STATE_DIR/failed"
    return 1
}

# mount_data_disk SERIAL: formats the data disk only when it is blank, then mounts it through systemd.
mount_data_disk() {
    local device state
    # The disk is attached after the instance starts; wait for it.
    wait_until 900 5 "the data disk with serial $1 appearing" data_disk_present "$1"
    device="$(find_data_disk "$1")"
    state="$(disk_state "$device")" || state="unknown: probing it failed"
    case "$state" in
        blank) mkfs.ext4 -q -L dify-data "$device" ;;
        ext4 | xfs) ;;
        *)
            fail_with "refusing the data disk $device, which is not blank ($state); nothing was written to it"
            return 1
            ;;
    esac
    log "data disk $device was $state, mounting it"
    install_units "$(blkid -p -s UUID -o value "$device")"
}

# install_units UUID: a mount unit for the data disk and a docker.service drop-in with RequiresMountsFor, so on
# every boot Docker starts only once the disk is mounted, and not at all without it (Dify must never come up on
# an empty directory of the system disk; the fstab "nofail" line of earlier bootstraps let Docker start first).
# Also dify-init-password.timer (see scrub_init_password), idle until the bootstrap is done.
install_units() {
    local unit
    unit="$(systemd-escape -p --suffix=mount "$DATA_MOUNT")"
    mkdir -p "$DATA_MOUNT" "$SYSTEMD_DIR/docker.service.d"
    printf '[Mount]\nWhat=/dev/disk/by-uuid/%s\nWhere=%s\n[Install]\nWantedBy=multi-user.target\n' "$1" "$DATA_MOUNT" >"$SYSTEMD_DIR/$unit"
    printf '[Unit]\nRequiresMountsFor=%s\n' "$DATA_MOUNT" >"$SYSTEMD_DIR/docker.service.d/dify-data.conf"
    printf '[Unit]\nAfter=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/bash %s scrub-init-password\n' \
        "$(readlink -f "$0")" >"$SYSTEMD_DIR/dify-init-password.service"
    printf '[Timer]\nOnBootSec=1min\nOnUnitActiveSec=1min\n[Install]\nWantedBy=timers.target\n' >"$SYSTEMD_DIR/dify-init-password.timer"
    systemctl daemon-reload
    systemctl enable --now "$unit" dify-init-password.timer
    mountpoint -q "$DATA_MOUNT" || fail_with "$unit did not mount the data disk"
}

os_id() {
    # shellcheck disable=SC1091
    (. /etc/os-release && printf '%s' "$ID")
}

install_docker_ubuntu() {
    local mirror="$1" codename
    # shellcheck disable=SC1091
    codename="$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")"
    install -m 0755 -d /etc/apt/keyrings
    curl -fsSL --max-time 60 "$mirror/linux/ubuntu/gpg" -o /etc/apt/keyrings/docker.asc || return 1
    chmod a+r /etc/apt/keyrings/docker.asc
    printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] %s/linux/ubuntu %s stable\n' \
        "$(dpkg --print-architecture)" "$mirror" "$codename" >/etc/apt/sources.list.d/docker.list
    apt-get -o DPkg::Lock::Timeout=600 update -q || return 1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin git openssl curl
}

install_docker_alinux() {
    local mirror="$1"
    dnf config-manager --add-repo="$mirror/linux/centos/docker-ce.repo" || return 1
    sed -i "s+https://mirrors.aliyun.com/docker-ce+$mirror+" /etc/yum.repos.d/docker-ce.repo
    # docker-ce has no $releasever=3 tree; the adapter maps Alibaba Cloud Linux 3 to 8.
    dnf -y install dnf-plugin-releasever-adapter --repo alinux3-plus || return 1
    dnf -y install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin git openssl curl
}

# compose_is_recent: the compose plugin is there and understands `!override` (2.24+).
compose_is_recent() {
    local version
    version="$(docker compose version --short 2>/dev/null)" || return 1
    [ "$(printf '2.24.0\n%s\n' "${version#v}" | sort -V | head -n1)" = 2.24.0 ]
}

install_docker() {
    local os mirror
    if command -v docker >/dev/null 2>&1 && compose_is_recent; then
        log "Docker and the compose plugin are already installed"
        return 0
    fi
    os="$(os_id)"
    for mirror in "$DOCKER_MIRROR_INTERNAL" "$DOCKER_MIRROR_PUBLIC"; do
        log "installing Docker CE on $os from $mirror"
        case "$os" in
            ubuntu) install_docker_ubuntu "$mirror" && return 0 ;;
            alinux) install_docker_alinux "$mirror" && return 0 ;;
            *)
                log "unsupported operating system: $os (supported: ubuntu, alinux)"
                return 1
                ;;
        esac
        log "installing Docker from $mirror failed"
    done
    return 1
}

# configure_docker: daemon.json with the registry mirrors (space-separated https URLs; the stack config refuses
# quotes, "\" and spaces in them, so each goes into the JSON string as it is), then (re)starts Docker.
configure_docker() {
    local mirrors="" mirror list
    mkdir -p "$DOCKER_ETC"
    if [ -n "${DIFY_REGISTRY_MIRRORS:-}" ]; then
        read -r -a list <<<"$DIFY_REGISTRY_MIRRORS"
        for mirror in "${list[@]}"; do
            mirrors="${mirrors:+$mirrors, }\"$mirror\""
        done
        printf '{\n  "registry-mirrors": [%s]\n}\n' "$mirrors" >"$DOCKER_ETC/daemon.json"
        log "Docker registry mirrors: $DIFY_REGISTRY_MIRRORS"
    fi
    systemctl enable docker.service docker.socket
    systemctl restart docker.service
}

fetch_dify() {
    local tag="$1" target="$2" tmp
    if [ -f "$target/docker/docker-compose.yaml" ] && [ "$(git -C "$target" describe --tags 2>/dev/null)" = "$tag" ]; then
        log "Dify $tag is already in $target"
        return 0
    fi
    rm -rf "$target"
    if timeout 600 git clone -q --depth 1 --branch "$tag" https://github.com/langgenius/dify.git "$target"; then
        log "fetched Dify $tag from GitHub"
    elif timeout 600 git clone -q --depth 1 --branch "$tag" https://gitee.com/dify_ai/dify.git "$target"; then
        log "fetched Dify $tag from Gitee"
    else
        rm -rf "$target"
        tmp="$(mktemp -d)"
        curl -fsSL --retry 3 --max-time 900 "https://github.com/langgenius/dify/archive/refs/tags/$tag.tar.gz" -o "$tmp/dify.tar.gz" || return 1
        mkdir -p "$target"
        tar -xzf "$tmp/dify.tar.gz" -C "$target" --strip-components=1 || return 1
        rm -rf "$tmp"
        log "fetched Dify $tag as a release tarball"
    fi
    if [ ! -f "$target/docker/docker-compose.yaml" ] || [ ! -f "$target/docker/.env.example" ]; then
        log "the fetched Dify $tag has no docker/docker-compose.yaml or docker/.env.example"
        return 1
    fi
}

# Dify's bind-mounted volumes live on the data disk, so they outlive the instance.
link_volumes_to_data_disk() {
    local volumes="$DIFY_DIR/docker/volumes" kept="$DATA_MOUNT/dify/volumes"
    mkdir -p "$kept"
    if [ -d "$volumes" ] && [ ! -L "$volumes" ]; then
        # The release ships some configuration under volumes/; copy what the data disk does not have yet.
        cp -a -n "$volumes/." "$kept/"
        rm -rf "$volumes"
    fi
    ln -sfn "$kept" "$volumes"
    # From 1.10.1 the api and worker containers run as uid 1001.
    mkdir -p "$kept/app/storage"
    chown -R 1001:1001 "$kept/app/storage"
}

compose() {
    (cd "$DIFY_DIR/docker" && docker compose "$@")
}

enable_https() {
    log "requesting a certificate for $DIFY_DOMAIN"
    compose --profile certbot up --force-recreate -d
    retry 5 30 compose exec -T certbot /bin/sh /update-cert.sh
    set_env_value "$DIFY_DIR/docker/.env" NGINX_HTTPS_ENABLED true
    compose --profile certbot up -d --no-deps --force-recreate nginx
}

# prepare_dify: Dify's docker/.env, from the release's .env.example, the settings and the kept secrets.
prepare_dify() {
    local docker_dir="$DIFY_DIR/docker" secrets="$DATA_MOUNT/dify/secrets.env"
    mkdir -p "$DATA_MOUNT/dify"
    load_or_create_secrets "$secrets"
    if [ ! -f "$docker_dir/.env" ]; then
        cp "$docker_dir/.env.example" "$docker_dir/.env"
    fi
    chmod 600 "$docker_dir/.env"
    configure_dify_env "$docker_dir/.env" "$secrets" "$DIFY_PUBLIC_URL"
    write_compose_override "$docker_dir"
}

# start_dify: pulls Dify's images and starts it, with HTTPS when a domain is set.
start_dify() {
    # Pull separately from up: pulls are the slow, flaky part and deserve their own retries.
    retry 5 60 compose pull --quiet
    retry 3 30 compose up -d
    if [ -n "${DIFY_DOMAIN:-}" ]; then
        enable_https
    fi
}

console_answers() {
    curl -fsS --max-time 10 http://127.0.0.1/console/api/setup >/dev/null 2>&1
}

# scrub_init_password: INIT_PASSWORD only guards the creation of the first admin, which Pulumi's DifyAdmin does
# after the bootstrap (or which a rebuilt instance finds done on the data disk). dify-init-password.timer runs
# this every minute: once the bootstrap is done and the console reports setup finished (GET /console/api/setup:
# "step": "finished"), INIT_PASSWORD is emptied in Dify's .env and in the settings file, `compose up -d`
# recreates the containers whose environment had it, and the timer disables itself. A failed `compose up`
# leaves the timer on, and the next run repeats it.
scrub_init_password() {
    local env_file="$DIFY_DIR/docker/.env" setup
    [ -f "$STATE_DIR/done" ] || return 0
    if [ -n "$(get_env_value "$env_file" INIT_PASSWORD)" ]; then
        setup="$(curl -fsS --max-time 10 http://127.0.0.1/console/api/setup)" || return 0
        grep -Eq '"step": *"finished"' <<<"$setup" || return 0
        set_env_value "$env_file" INIT_PASSWORD ""
        set_env_value "$CONFIG_FILE" DIFY_INIT_PASSWORD "''"
    fi
    compose up -d
    systemctl disable --now dify-init-password.timer
    log "the first admin exists: INIT_PASSWORD removed"
}

on_error() {
    local line="$1"
    printf 'bootstrap failed at line %s; see %s\n' "$line" "$LOG_FILE" >>"$STATE_DIR/failed"
    log "FAILED at line $line"
}

main() {
    mkdir -p "$STATE_DIR"
    rm -f "$STATE_DIR/done" "$STATE_DIR/failed"
    exec > >(tee -a "$LOG_FILE") 2>&1
    trap 'on_error "$LINENO"' ERR
    # shellcheck source=/dev/null
    . "$CONFIG_FILE"
    log "bootstrapping Dify $DIFY_VERSION for $DIFY_PUBLIC_URL"

    # Before Docker is installed: the package starts Docker, which must find the data disk mounted.
    mount_data_disk "$DIFY_DATA_DISK_SERIAL"
    retry 3 30 install_docker
    configure_docker
    retry 3 30 fetch_dify "$DIFY_VERSION" "$DIFY_DIR"
    link_volumes_to_data_disk

    prepare_dify
    start_dify
    wait_until 900 10 "Dify's console API answering" console_answers
    date -u +%Y-%m-%dT%H:%M:%SZ >"$STATE_DIR/done"
    log "Dify $DIFY_VERSION is up at $DIFY_PUBLIC_URL"
}

# Tests source this file with DIFY_BOOTSTRAP_SOURCE_ONLY=1 to exercise the functions on their own.
# dify-init-password.service runs it with "scrub-init-password".
if [ "${DIFY_BOOTSTRAP_SOURCE_ONLY:-0}" != 1 ]; then
    case "${1:-}" in
        scrub-init-password) scrub_init_password 2>&1 | tee -a "$LOG_FILE" ;;
        *) main "$@" ;;
    esac
fi
