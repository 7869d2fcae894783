#!/usr/bin/env bash
# Dify bootstrap for an Alibaba Cloud ECS instance, run once per instance by cloud-init.
# Settings come from /etc/dify-bootstrap/bootstrap.env (written by the same user data). Secrets for Dify are
# generated here, on the instance, and kept on the data disk so a rebuilt instance reuses them with its data.
# Success leaves /var/lib/dify-bootstrap/done; failure leaves /var/lib/dify-bootstrap/failed with the reason.
# /var/lib/dify-bootstrap/status says where it is (see set_status); Pulumi reads it through Cloud Assistant.
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
APT_DIR="${DIFY_BOOTSTRAP_APT_DIR:-/etc/apt}"
YUM_REPOS_DIR="${DIFY_BOOTSTRAP_YUM_REPOS_DIR:-/etc/yum.repos.d}"
# Docker CE mirrors, tried in this order. Alibaba documents its VPC-internal mirror over http only (no https
# certificate covers mirrors.cloud.aliyuncs.com); it is used anyway because the transport is not what is trusted:
# the repository key is checked against the fingerprint below before it is installed, and then apt (signed-by:
# the signed index, whose hashes cover every package) and dnf (gpgcheck=1: every package) refuse whatever that key
# did not sign. Everything else is fetched over https.
DOCKER_MIRROR_INTERNAL=http://mirrors.cloud.aliyuncs.com/docker-ce
DOCKER_MIRROR_PUBLIC=https://mirrors.aliyun.com/docker-ce
# Fingerprints of Docker's repository signing keys (the primary keys): linux/ubuntu/gpg (Docker's Ubuntu guide)
# and linux/centos/gpg (Docker's CentOS guide), two different keys; the Alibaba mirrors serve Docker's own.
# DIFY_BOOTSTRAP_DOCKER_KEY_FPR replaces both, for the tests' throwaway keys only.
DOCKER_KEY_FPR_UBUNTU="${DIFY_BOOTSTRAP_DOCKER_KEY_FPR:-9DC858229FC7DD38854AE2D88D81803C0EBFCD88}"
DOCKER_KEY_FPR_CENTOS="${DIFY_BOOTSTRAP_DOCKER_KEY_FPR:-060A61C51B558A7F742B77AAC52FEB6B621E9F35}"

log() {
    printf '%s dify-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

# set_status STATE STEP [DETAIL]: the status file the readiness check reads (dynamic-providers/dify/
# bootstrap-status.ts parses it): "state=" running, done or failed, "step=", "detail=" and "updated=" lines, and
# "settings=" with DIFY_SETTINGS_DIGEST (empty until the settings file is read): which settings this run applies,
# so that Pulumi (DifyInstanceConfiguration) knows a "done" is the one of the settings it asked for.
# Written to a temporary file and renamed, so a reader never sees half of it; line breaks in a value become spaces.
set_status() {
    local tmp detail="${3:-}"
    mkdir -p "$STATE_DIR"
    tmp="$(mktemp "$STATE_DIR/.status.XXXXXX")"
    printf 'state=%s\nstep=%s\ndetail=%s\nupdated=%s\nsettings=%s\n' "$1" "${2//$'\n'/ }" "${detail//$'\n'/ }" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${DIFY_SETTINGS_DIGEST:-}" >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$STATE_DIR/status"
}

# step WHAT [DETAIL]: enters a step (or reports progress within it): logged, and in the status file.
CURRENT_STEP="starting"
step() {
    CURRENT_STEP="$1"
    set_status running "$1" "${2:-}"
    log "step: $1${2:+ ($2)}"
}

# retry ATTEMPTS DELAY_SECONDS COMMAND...: runs COMMAND until it succeeds or ATTEMPTS are used up.
# bash ignores `set -e` inside a command run as a condition, so retried functions check each step themselves.
retry() {
    local attempts="$1" delay="$2" n=1
    shift 2
    until "$@"; do
        if [ "$n" -ge "$attempts" ]; then
            fail_with "giving up after $n attempts: $*"
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
            fail_with "$what did not happen within ${limit}s"
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

    # INIT_PASSWORD only guards the first admin's creation: once scrub_init_password saw the admin (its marker on
    # the data disk), it stays empty, also when the bootstrap runs again or on a rebuilt instance.
    if [ -e "$DATA_MOUNT/dify/admin-exists" ]; then
        set_env_value "$env_file" INIT_PASSWORD ""
    else
        set_env_value "$env_file" INIT_PASSWORD "$DIFY_INIT_PASSWORD"
    fi
    # Must stay a bare port (see write_compose_override); bootstraps before it wrote "127.0.0.1:5003" here.
    case "$(get_env_value "$env_file" EXPOSE_PLUGIN_DEBUGGING_PORT)" in
        *[!0-9]*) set_env_value "$env_file" EXPOSE_PLUGIN_DEBUGGING_PORT 5003 ;;
    esac
    # The plugin daemon's task monitor marks an install failed PYTHON_ENV_INIT_TIMEOUT + 60 s after it began (120 s
    # by default: 3 minutes, while uv may still be downloading); 600 outlasts uv's own 10-minute limit.
    set_env_value "$env_file" PLUGIN_PYTHON_ENV_INIT_TIMEOUT 600
    if [ -n "${DIFY_PIP_MIRROR_URL:-}" ]; then
        set_env_value "$env_file" PIP_MIRROR_URL "$DIFY_PIP_MIRROR_URL"
        # A plugin with a uv.lock (tongyi has one) gets `uv sync --frozen`, which fetches the lock's
        # files.pythonhosted.org URLs and never the mirror; without the lock uv resolves against the mirror.
        set_env_value "$env_file" PLUGIN_IGNORE_UV_LOCK true
    fi
    # HTTPS (see enable_https): nginx answers the ACME challenge on port 80 from volumes/certbot/www and serves
    # live/$CERT_NAME/ (CERTBOT_DOMAIN: the certbot lineage, not the name, so the path never changes) once it
    # exists: NGINX_HTTPS_ENABLED follows the certificate, which a rebuilt instance finds on the data disk.
    if https_enabled; then
        set_env_value "$env_file" NGINX_SERVER_NAME "${DIFY_DOMAIN:-_}"
        set_env_value "$env_file" NGINX_ENABLE_CERTBOT_CHALLENGE true
        set_env_value "$env_file" CERTBOT_DOMAIN "$CERT_NAME"
        set_env_value "$env_file" NGINX_SSL_CERT_FILENAME fullchain.pem
        set_env_value "$env_file" NGINX_SSL_CERT_KEY_FILENAME privkey.pem
        # 1.8.0's .env.example still offers TLSv1.1.
        set_env_value "$env_file" NGINX_SSL_PROTOCOLS "TLSv1.2 TLSv1.3"
        if certificate_present; then
            set_env_value "$env_file" NGINX_HTTPS_ENABLED true
        else
            set_env_value "$env_file" NGINX_HTTPS_ENABLED false
        fi
    else
        set_env_value "$env_file" NGINX_HTTPS_ENABLED false
        set_env_value "$env_file" NGINX_ENABLE_CERTBOT_CHALLENGE false
    fi
}

# write_compose_override DOCKER_DIR: keeps the plugin daemon's debugging port on loopback (it is also closed in
# the security group). Compose reads docker-compose.override.yaml beside docker-compose.yaml by itself, also for
# an operator's `docker compose` there. EXPOSE_PLUGIN_DEBUGGING_PORT must stay a bare port: Dify also passes it
# to the api as PLUGIN_REMOTE_INSTALL_PORT, a PositiveInt, and "127.0.0.1:5003" there crash-loops the api.
# `!override` (Compose 2.24+) replaces the release's port list, whose "5003:5003" would bind 0.0.0.0.
# With NGINX_HTTPS_ENABLED in .env, port 80 of the host only redirects to https and answers the ACME challenge:
# Dify's own nginx server (its template listens on NGINX_PORT and, with HTTPS, NGINX_SSL_PORT) keeps its port 80
# inside the container, unpublished, and host port 80 goes to a second server on 8080 ($REDIRECT_CONF, mounted
# into conf.d, which Dify's nginx.conf includes). Dify's templates stay as released.
REDIRECT_CONF=nginx-https-redirect.conf
write_compose_override() {
    local file="$1/docker-compose.override.yaml" debugging=0 https=0
    if has_env_key "$1/.env" EXPOSE_PLUGIN_DEBUGGING_PORT; then debugging=1; fi
    if [ "$(get_env_value "$1/.env" NGINX_HTTPS_ENABLED)" = true ]; then https=1; fi
    if [ "$https" = 0 ]; then rm -f "$1/$REDIRECT_CONF"; fi
    if [ "$debugging$https" = 00 ]; then
        rm -f "$file"
        return 0
    fi
    {
        echo "services:"
        if [ "$debugging" = 1 ]; then
            cat <<'YAML'
  plugin_daemon:
    ports: !override
      - "127.0.0.1:${EXPOSE_PLUGIN_DEBUGGING_PORT:-5003}:${PLUGIN_DEBUGGING_PORT:-5003}"
YAML
        fi
        if [ "$https" = 1 ]; then
            cat <<'YAML'
  nginx:
    ports: !override
      - "${EXPOSE_NGINX_PORT:-80}:8080"
      - "${EXPOSE_NGINX_SSL_PORT:-443}:${NGINX_SSL_PORT:-443}"
    volumes:
      - ./nginx-https-redirect.conf:/etc/nginx/conf.d/https-redirect.conf:ro
YAML
        fi
    } >"$file"
    if [ "$https" = 1 ]; then
        cat >"$1/$REDIRECT_CONF" <<'NGINX'
# Written by the Dify bootstrap: host port 80 (docker-compose.override.yaml).
server {
    listen 8080 default_server;
    server_name _;
    location /.well-known/acme-challenge/ {
        root /var/www/html;
    }
    location / {
        return 301 https://$host$request_uri;
    }
}
NGINX
    fi
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
    mkdir -p "$STATE_DIR"
    echo "$*" >>"$STATE_DIR/failed"
    set_status failed "$CURRENT_STEP" "$*"
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
    # With HTTPS, dify-certificate-renewal.timer (see renew_certificate): twice a day, spread over an hour, and
    # at boot for a run missed while the instance was off.
    if https_enabled; then
        printf '[Unit]\nAfter=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/bash %s renew-certificate\n' \
            "$(readlink -f "$0")" >"$SYSTEMD_DIR/dify-certificate-renewal.service"
        printf '[Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n[Install]\nWantedBy=timers.target\n' \
            >"$SYSTEMD_DIR/dify-certificate-renewal.timer"
    fi
    systemctl daemon-reload
    systemctl enable --now "$unit" dify-init-password.timer
    if https_enabled; then systemctl enable --now dify-certificate-renewal.timer; fi
    mountpoint -q "$DATA_MOUNT" || fail_with "$unit did not mount the data disk"
}

os_id() {
    # shellcheck disable=SC1091
    (. /etc/os-release && printf '%s' "$ID")
}

# docker_key_fingerprints FILE: the fingerprints of the primary keys in the key file FILE, space-separated (a
# subkey's fingerprint follows its "sub" record and is left out). gpg only reads the file (--show-keys imports
# nothing), with a scratch GNUPGHOME that is removed afterwards.
docker_key_fingerprints() {
    local home rc=0
    home="$(mktemp -d)"
    GNUPGHOME="$home" gpg --batch --quiet --with-colons --show-keys "$1" 2>/dev/null |
        awk -F: '$1 == "pub" { p = 1; next } p && $1 == "fpr" { print $10; p = 0 }' | xargs || rc=$?
    GNUPGHOME="$home" gpgconf --kill all >/dev/null 2>&1 || true
    rm -rf "$home"
    return "$rc"
}

# fetch_docker_key URL FILE FINGERPRINT: downloads Docker's repository key to FILE and checks that it holds exactly
# one key, the primary key FINGERPRINT: a second key beside the right one is refused too, as apt and rpm would
# trust every key in the file. The transport (http from the VPC mirror) does not matter once this passed.
# A refused key is logged and noted in DOCKER_KEY_REFUSED, for install_docker's message.
DOCKER_KEY_REFUSED=""
fetch_docker_key() {
    local found
    curl -fsSL --max-time 60 "$1" -o "$2" || return 1
    found="$(docker_key_fingerprints "$2")" || found=""
    if [ "$found" != "$3" ]; then
        log "refusing the Docker repository key from $1: expected the key $3, found ${found:-no key}"
        DOCKER_KEY_REFUSED="${DOCKER_KEY_REFUSED:+$DOCKER_KEY_REFUSED; }$1: expected $3, found ${found:-no key}"
        return 1
    fi
}

# install_docker_ubuntu MIRROR: Docker CE from MIRROR's apt repository, which apt trusts with the checked key only
# (signed-by): an index or package the key did not sign is refused, whatever the mirror serves.
install_docker_ubuntu() {
    local mirror="$1" codename key
    # shellcheck disable=SC1091
    codename="$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")"
    if ! command -v gpg >/dev/null 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 update -q || return 1
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q gnupg || return 1
    fi
    key="$(mktemp)"
    if ! fetch_docker_key "$mirror/linux/ubuntu/gpg" "$key" "$DOCKER_KEY_FPR_UBUNTU"; then
        rm -f "$key"
        return 1
    fi
    install -m 0755 -d "$APT_DIR/keyrings" "$APT_DIR/sources.list.d"
    install -m 0644 "$key" "$APT_DIR/keyrings/docker.asc"
    rm -f "$key"
    printf 'deb [arch=%s signed-by=%s] %s/linux/ubuntu %s stable\n' \
        "$(dpkg --print-architecture)" "$APT_DIR/keyrings/docker.asc" "$mirror" "$codename" >"$APT_DIR/sources.list.d/docker.list"
    apt-get -o DPkg::Lock::Timeout=600 update -q || return 1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin git openssl curl
}

# install_docker_alinux MIRROR: the checked key goes into rpm's keyring first; the repository file is written here
# rather than taken from the mirror (over http it could say anything, and dnf would import whatever key its
# gpgkey= URL serves): no gpgkey, gpgcheck=1, so dnf installs only packages signed by the imported key.
install_docker_alinux() {
    local mirror="$1" key
    command -v gpg >/dev/null 2>&1 || dnf -y install gnupg2 || return 1
    key="$(mktemp)"
    if ! fetch_docker_key "$mirror/linux/centos/gpg" "$key" "$DOCKER_KEY_FPR_CENTOS" || ! rpm --import "$key"; then
        rm -f "$key"
        return 1
    fi
    rm -f "$key"
    mkdir -p "$YUM_REPOS_DIR"
    # shellcheck disable=SC2016
    printf '[docker-ce-stable]\nname=Docker CE Stable - $basearch\nbaseurl=%s/linux/centos/$releasever/$basearch/stable\nenabled=1\ngpgcheck=1\n' \
        "$mirror" >"$YUM_REPOS_DIR/docker-ce.repo"
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

# install_docker: Docker CE and the compose plugin from the first mirror that works. When a mirror served a
# repository key other than Docker's and none worked, the bootstrap stops (exit: `retry` would only fetch the same
# key again), naming the expected and found fingerprints.
install_docker() {
    local os mirror
    if command -v docker >/dev/null 2>&1 && compose_is_recent; then
        log "Docker and the compose plugin are already installed"
        return 0
    fi
    os="$(os_id)"
    DOCKER_KEY_REFUSED=""
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
    if [ -n "$DOCKER_KEY_REFUSED" ]; then
        fail_with "refusing Docker's repository key, Docker was not installed: $DOCKER_KEY_REFUSED"
        exit 1
    fi
    return 1
}

# configure_docker: daemon.json with the registry mirrors (space-separated https URLs; the stack config refuses
# quotes, "\" and spaces in them, so each goes into the JSON string as it is), then makes sure Docker runs. Docker
# is restarted only when daemon.json changed or Docker is not active: a bootstrap applied again on a running
# instance (DifyInstanceConfiguration) must not restart every container for nothing. Without mirrors, a
# daemon.json of the shape written here (an earlier run's mirrors) is removed; any other file is left alone.
configure_docker() {
    local mirrors="" mirror list file="$DOCKER_ETC/daemon.json" wanted="" changed=0
    mkdir -p "$DOCKER_ETC"
    if [ -n "${DIFY_REGISTRY_MIRRORS:-}" ]; then
        read -r -a list <<<"$DIFY_REGISTRY_MIRRORS"
        for mirror in "${list[@]}"; do
            mirrors="${mirrors:+$mirrors, }\"$mirror\""
        done
        wanted="$(printf '{\n  "registry-mirrors": [%s]\n}' "$mirrors")"
        log "Docker registry mirrors: $DIFY_REGISTRY_MIRRORS"
        if [ ! -f "$file" ] || [ "$(cat "$file")" != "$wanted" ]; then
            printf '%s\n' "$wanted" >"$file"
            changed=1
        fi
    elif [ -f "$file" ] && awk 'NR == 1 && $0 == "{" { n++ } NR == 2 && /^  "registry-mirrors": \[.*\]$/ { n++ } NR == 3 && $0 == "}" { n++ }
        END { exit !(n == 3 && NR == 3) }' "$file"; then
        log "no Docker registry mirrors any more: removing $file"
        rm -f "$file"
        changed=1
    fi
    systemctl enable docker.service docker.socket
    if [ "$changed" = 1 ] || ! systemctl is-active --quiet docker.service; then
        systemctl restart docker.service
    else
        log "Docker's settings are unchanged and it is running: not restarting it"
    fi
}

# release_digest DIR [FILE...]: the content digest of the files below DIR (every file or symbolic link, or the
# FILEs given): the SHA-256 of a manifest with the line "<sha256 of the file>  <path>" per file, paths relative to
# DIR, sorted bytewise; a FILE given that is missing counts as the content "missing:<path>". Byte for byte the
# digest of rules/dify-releases.ts and tests/harness/dify-release.ts (contentDigest), which the tests compare.
release_digest() {
    local dir="$1" file sum
    shift
    {
        if [ "$#" -gt 0 ]; then printf '%s\0' "$@"; else find "$dir" -mindepth 1 \( -type f -o -type l \) -printf '%P\0'; fi
    } | LC_ALL=C sort -z | while IFS= read -r -d '' file; do
        if [ -e "$dir/$file" ]; then
            sum="$(sha256sum <"$dir/$file")" || exit 1
        else
            sum="$(printf 'missing:%s' "$file" | sha256sum)"
        fi
        printf '%s  %s\n' "${sum%% *}" "$file"
    done | sha256sum | cut -d' ' -f1
}

# verify_dify_release TAG DIR SOURCE: whether DIR holds Dify's release TAG as the stack pinned it (rules/
# dify-releases.ts): DIFY_RELEASE_DIGEST of docker/ (of DIFY_RELEASE_FILES in it, when set), and for a clone
# DIFY_RELEASE_COMMIT, when pinned, against its HEAD. A mismatch leaves both values in RELEASE_MISMATCH. Without
# a digest (allowUnpinnedDifyVersion) nothing is verified, and the log says so.
RELEASE_MISMATCH=""
verify_dify_release() {
    local files=() found head
    if [ -z "${DIFY_RELEASE_DIGEST:-}" ]; then
        log "NOT verifying Dify $1: the stack pins no digest for it (allowUnpinnedDifyVersion); using it as fetched"
        return 0
    fi
    if [ "$3" != tarball ] && [ -n "${DIFY_RELEASE_COMMIT:-}" ]; then
        head="$(git -C "$2" rev-parse HEAD 2>/dev/null)" || head=unknown
        if [ "$head" != "$DIFY_RELEASE_COMMIT" ]; then
            RELEASE_MISMATCH="commit $head, pinned $DIFY_RELEASE_COMMIT"
            return 1
        fi
    fi
    read -r -a files <<<"${DIFY_RELEASE_FILES:-}"
    found="$(release_digest "$2/docker" "${files[@]}")" || found="unreadable"
    if [ "$found" != "$DIFY_RELEASE_DIGEST" ]; then
        RELEASE_MISMATCH="docker/ has the digest $found, pinned $DIFY_RELEASE_DIGEST"
        return 1
    fi
    log "verified Dify $1 from $3: docker/ has the pinned digest $found"
}

# fetch_dify_from SOURCE TAG TARGET: the release as SOURCE delivers it, in TARGET: GitHub or Gitee (a clone of
# the tag) or tarball (GitHub's archive of the tag). All https.
fetch_dify_from() {
    local tmp rc=0
    case "$1" in
        GitHub) timeout 600 git clone -q --depth 1 --branch "$2" https://github.com/langgenius/dify.git "$3" ;;
        Gitee) timeout 600 git clone -q --depth 1 --branch "$2" https://gitee.com/dify_ai/dify.git "$3" ;;
        tarball)
            tmp="$(mktemp -d)"
            curl -fsSL --retry 3 --max-time 900 "https://github.com/langgenius/dify/archive/refs/tags/$2.tar.gz" -o "$tmp/dify.tar.gz" &&
                mkdir -p "$3" && tar -xzf "$tmp/dify.tar.gz" -C "$3" --strip-components=1 || rc=$?
            rm -rf "$tmp"
            return "$rc"
            ;;
    esac
}

# fetch_dify TAG TARGET: Dify's release TAG in TARGET, from GitHub, else the Gitee mirror, else GitHub's tarball.
# Each copy is verified (verify_dify_release) before anything in it is used; one that does not match is removed
# and the next source tried, so a source serving other files cannot win. When a source delivered a mismatch and
# none the release, the bootstrap stops (exit: `retry` would fetch the same again), logging both digests.
# A verified tree gets a marker with the tag and digest; a rerun keeps a tree only when its marker matches.
fetch_dify() {
    local tag="$1" target="$2" source refused="" pin
    pin="$tag ${DIFY_RELEASE_DIGEST:-unverified}"
    if [ -f "$target/docker/docker-compose.yaml" ] && [ "$(cat "$target/.dify-release-verified" 2>/dev/null)" = "$pin" ]; then
        log "Dify $tag is already in $target"
        return 0
    fi
    for source in GitHub Gitee tarball; do
        rm -rf "$target"
        fetch_dify_from "$source" "$tag" "$target" || continue
        log "fetched Dify $tag from $source"
        if ! verify_dify_release "$tag" "$target" "$source"; then
            log "refusing Dify $tag from $source and removing it: $RELEASE_MISMATCH"
            refused="${refused:+$refused; }$source: $RELEASE_MISMATCH"
            continue
        fi
        if [ ! -f "$target/docker/docker-compose.yaml" ] || [ ! -f "$target/docker/.env.example" ]; then
            log "the fetched Dify $tag has no docker/docker-compose.yaml or docker/.env.example"
            return 1
        fi
        echo "$pin" >"$target/.dify-release-verified"
        return 0
    done
    rm -rf "$target"
    if [ -n "$refused" ]; then
        fail_with "refusing Dify $tag: no source delivered the release the stack pinned (rules/dify-releases.ts); $refused"
        exit 1
    fi
    log "fetching Dify $tag failed from GitHub, Gitee and the tarball"
    return 1
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

# HTTPS, unless the settings chose plain HTTP (a DIFY_PUBLIC_URL of http://): a Let's Encrypt certificate for
# DIFY_DOMAIN, or for the EIP itself (an IP certificate: profile shortlived, about 6 days), from certbot's webroot
# plugin, for which Dify's nginx serves volumes/certbot/www on port 80. certbot is the pinned image
# DIFY_CERTBOT_IMAGE (rules/certbot.ts), not the release's certbot service; the files are the release's certbot
# volumes, which nginx mounts. DIFY_ACME_SERVER (settings file) replaces Let's Encrypt, e.g. with its staging.
CERT_NAME=dify
ACME_DIRECTORY=https://acme-v02.api.letsencrypt.org/directory

https_enabled() {
    [[ ${DIFY_PUBLIC_URL:-} == https://* ]]
}

# certificate_identifier: the name the certificate is for: DIFY_DOMAIN, else the host of DIFY_PUBLIC_URL (the EIP).
certificate_identifier() {
    local host="${DIFY_PUBLIC_URL#*://}"
    printf '%s' "${DIFY_DOMAIN:-${host%%[:/]*}}"
}

is_ip_address() {
    [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $1 == *:* ]]
}

certificate_present() {
    local live="$DIFY_DIR/docker/volumes/certbot/conf/live/$CERT_NAME"
    [ -s "$live/fullchain.pem" ] && [ -s "$live/privkey.pem" ]
}

# certbot_issue_args CONFIG_DIR WORK_DIR LOGS_DIR WEBROOT: CERTBOT_ARGS becomes the issuance command, with the
# directories as certbot sees them. An IP gets --ip-address and the shortlived profile (Let's Encrypt's only
# profile for IPs); a domain gets -d and the CA's default profile. --cert-name keeps the lineage in live/dify/
# whatever the name. Non-interactive, certbot keeps a certificate that is not due yet (a rebuilt instance finds
# it on the data disk) and replaces one for other names. The renewal configuration it saves keeps all of this.
CERTBOT_ARGS=()
certbot_issue_args() {
    local name
    name="$(certificate_identifier)"
    CERTBOT_ARGS=(certonly --webroot -w "$4" --cert-name "$CERT_NAME")
    if is_ip_address "$name"; then
        CERTBOT_ARGS+=(--ip-address "$name" --preferred-profile shortlived)
    else
        CERTBOT_ARGS+=(-d "$name")
    fi
    CERTBOT_ARGS+=(--server "${DIFY_ACME_SERVER:-$ACME_DIRECTORY}" -n --agree-tos)
    if [ -n "${DIFY_CERT_EMAIL:-}" ]; then
        CERTBOT_ARGS+=(-m "$DIFY_CERT_EMAIL" --no-eff-email)
    else
        CERTBOT_ARGS+=(--register-unsafely-without-email)
    fi
    CERTBOT_ARGS+=(--config-dir "$1" --work-dir "$2" --logs-dir "$3")
}

# certbot_renew_args CONFIG_DIR WORK_DIR LOGS_DIR: the renewal command; the rest comes from the renewal
# configuration. certbot renews only when due (its ARI window, else half-way for a short-lived certificate, two
# thirds for a 90-day one). No random sleep: the timer spreads its runs already.
certbot_renew_args() {
    CERTBOT_ARGS=(renew --cert-name "$CERT_NAME" -n --no-random-sleep-on-renew --config-dir "$1" --work-dir "$2" --logs-dir "$3")
}

# run_certbot issue|renew: certbot with those arguments, run from DIFY_CERTBOT_IMAGE with the release's certbot
# volumes where its docker-compose.yaml mounts them; for the tests, the binary DIFY_BOOTSTRAP_CERTBOT, given the
# same directories on the host.
run_certbot() {
    local volumes="$DIFY_DIR/docker/volumes/certbot"
    mkdir -p "$volumes/conf" "$volumes/www" "$volumes/logs"
    if [ -n "${DIFY_BOOTSTRAP_CERTBOT:-}" ]; then
        "certbot_$1_args" "$volumes/conf" "$volumes/work" "$volumes/logs" "$volumes/www"
        "$DIFY_BOOTSTRAP_CERTBOT" "${CERTBOT_ARGS[@]}"
        return
    fi
    if [ -z "${DIFY_CERTBOT_IMAGE:-}" ]; then
        log "DIFY_CERTBOT_IMAGE is not set in $CONFIG_FILE"
        return 1
    fi
    # Pulled with Dify's images; again only if it was removed since.
    docker image inspect "$DIFY_CERTBOT_IMAGE" >/dev/null 2>&1 || pull_image "$DIFY_CERTBOT_IMAGE" || return 1
    "certbot_$1_args" /etc/letsencrypt /var/lib/letsencrypt /var/log/letsencrypt /var/www/html
    docker run --rm --pull never -v "$volumes/conf:/etc/letsencrypt" -v "$volumes/www:/var/www/html" \
        -v "$volumes/logs:/var/log/letsencrypt" "$DIFY_CERTBOT_IMAGE" "${CERTBOT_ARGS[@]}"
}

request_certificate() {
    run_certbot issue && certificate_present
}

# enable_https: Dify is up over HTTP, nginx answering the ACME challenge (configure_dify_env). Gets the certificate
# (retried: on a first boot the EIP may not be bound yet; 4 tries stay under Let's Encrypt's 5 failed validations
# per name and hour), then turns HTTPS on: NGINX_HTTPS_ENABLED and the redirect on port 80
# (write_compose_override), and recreates nginx, whose entrypoint picks the certificate's path only at start.
enable_https() {
    local name docker_dir="$DIFY_DIR/docker"
    name="$(certificate_identifier)"
    step "requesting a certificate for $name"
    if ! retry 4 90 request_certificate; then
        fail_with "no certificate for $name from ${DIFY_ACME_SERVER:-$ACME_DIRECTORY}: its validation fetches /.well-known/acme-challenge/ from $name on port 80, which must be open to the internet; certbot's log is in $docker_dir/volumes/certbot/logs"
        return 1
    fi
    step "switching nginx to HTTPS"
    set_env_value "$docker_dir/.env" NGINX_HTTPS_ENABLED true
    write_compose_override "$docker_dir"
    retry 3 30 compose up -d --no-deps --force-recreate nginx
}

# renew_certificate: what dify-certificate-renewal.service runs, twice a day: `certbot renew` (a no-op until the
# certificate is due), then a graceful `nginx -s reload`, which serves the renewed files (live/dify/ links to
# the newest). Nothing without HTTPS or before the first certificate.
renew_certificate() {
    local live="$DIFY_DIR/docker/volumes/certbot/conf/live/$CERT_NAME/fullchain.pem" before
    # shellcheck source=/dev/null
    . "$CONFIG_FILE"
    if ! https_enabled || ! certificate_present; then
        log "no certificate to renew"
        return 0
    fi
    before="$(readlink "$live")"
    if ! run_certbot renew; then
        log "certbot renew failed; the timer tries again within 12 hours"
        return 1
    fi
    if [ "$(readlink "$live")" != "$before" ]; then
        log "renewed the certificate for $(certificate_identifier)"
    fi
    compose exec -T nginx nginx -s reload
}

# console_setup: GET /console/api/setup from this host's nginx: over https once nginx serves it (port 80 then only
# redirects), to 127.0.0.1, which the certificate does not name, so unverified (the readiness check verifies it
# from outside); over http before and with plain HTTP.
console_setup() {
    local scheme=http insecure=()
    if [ "$(get_env_value "$DIFY_DIR/docker/.env" NGINX_HTTPS_ENABLED 2>/dev/null)" = true ]; then
        scheme=https
        insecure=(-k)
    fi
    curl -fsS --max-time 10 "${insecure[@]}" "$scheme://127.0.0.1/console/api/setup"
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

# image_registry IMAGE: where IMAGE comes from, for messages: the host of a qualified name (or of its copy in
# DIFY_IMAGE_REGISTRY), else Docker Hub (through the daemon's registry mirrors, when there are any).
image_registry() {
    local source first
    source="$(image_source "$1")"
    first="${source%%/*}"
    if [[ $source == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
        printf '%s' "$first"
    else
        printf 'docker.io%s' "${DIFY_REGISTRY_MIRRORS:+ (registry mirrors: $DIFY_REGISTRY_MIRRORS)}"
    fi
}

gigabytes() {
    awk -v b="$1" 'BEGIN { printf "%.1f GB", b / 1e9 }'
}

# image_source IMAGE: what to pull for IMAGE. With DIFY_IMAGE_REGISTRY (an ACR instance over the VPC, whose
# repositories mirror Docker Hub's under the same namespace/name), a Docker Hub image's copy there; any other image
# as it is. "postgres:15-alpine" is Docker Hub's "library/postgres:15-alpine".
image_source() {
    local first="${1%%/*}" name="$1"
    if [ -z "${DIFY_IMAGE_REGISTRY:-}" ] || [[ $1 == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
        printf '%s' "$1"
        return 0
    fi
    [[ $name == */* ]] || name="library/$name"
    printf '%s/%s' "$DIFY_IMAGE_REGISTRY" "$name"
}

# pull_image IMAGE: one `docker pull` of IMAGE's source, tagged as IMAGE so Compose finds it without pulling; on
# failure, docker's last line is kept in PULL_ERROR for the status.
PULL_ERROR=""
pull_image() {
    local out source
    source="$(image_source "$1")"
    if out="$(docker pull -q "$source" 2>&1)"; then
        [ "$source" = "$1" ] || docker tag "$source" "$1"
        return 0
    fi
    log "docker pull $source: $out"
    PULL_ERROR="${out##*$'\n'}"
    return 1
}

# pull_images: Dify's images one by one (pulls are the slow, flaky part: each gets its own retries), with the
# count and the bytes so far in the status. A pull that keeps failing names the image, its registry and why.
pull_images() {
    local images image n=0 pulled=0 size
    # With HTTPS, also the pinned certbot image that enable_https runs: it must come from the same place.
    mapfile -t images < <({
        compose config --images
        if https_enabled; then printf '%s\n' "$DIFY_CERTBOT_IMAGE"; fi
    } | sort -u)
    for image in "${images[@]}"; do
        n=$((n + 1))
        step "pulling images" "$n/${#images[@]}: $image ($(gigabytes "$pulled") so far)"
        if ! retry 5 60 pull_image "$image"; then
            fail_with "pulling $image from $(image_registry "$image") failed 5 times: $PULL_ERROR"
            return 1
        fi
        size="$(docker image inspect -f '{{.Size}}' "$image" 2>/dev/null)" || size=0
        pulled=$((pulled + ${size:-0}))
    done
    log "pulled ${#images[@]} images, $(gigabytes "$pulled")"
}

# start_dify: pulls Dify's images and starts it, then turns HTTPS on (unless the settings chose plain HTTP).
start_dify() {
    pull_images
    step "starting Dify"
    retry 3 30 compose up -d
    if https_enabled; then
        enable_https
    fi
}

# migration_state: what the api container's log says of the database migration it runs at start
# (api/docker/entrypoint.sh runs `flask upgrade-db`): done, failed or pending.
migration_state() {
    local logs
    logs="$(compose logs --no-color api 2>&1)" || true
    case "$logs" in
        *"Database migration failed"*) echo failed ;;
        *"Database migration successful"* | *"Database migration skipped"*) echo "done" ;;
        *) echo pending ;;
    esac
}

# wait_for_migrations: until the migration is done (or the console answers, which is later), at most 30 min.
wait_for_migrations() {
    local waited=0 state
    step "migrating the database"
    while :; do
        state="$(migration_state)"
        if [ "$state" = failed ]; then
            fail_with "Dify's database migration failed: $(compose logs --no-color api 2>&1 | grep -m1 'Database migration failed')"
            return 1
        fi
        if [ "$state" = "done" ] || console_answers; then
            return 0
        fi
        if [ "$waited" -ge 1800 ]; then
            fail_with "Dify's database migration did not finish within 1800s"
            return 1
        fi
        sleep 10
        waited=$((waited + 10))
    done
}

console_answers() {
    console_setup >/dev/null 2>&1
}

# scrub_init_password: INIT_PASSWORD only guards the creation of the first admin, which Pulumi's DifyAdmin does
# after the bootstrap (or which a rebuilt instance finds done on the data disk). dify-init-password.timer runs
# this every minute: once the bootstrap is done and the console reports setup finished (GET /console/api/setup:
# "step": "finished"), INIT_PASSWORD is emptied in Dify's .env and in the settings file, the marker
# $DATA_MOUNT/dify/admin-exists is left on the data disk (configure_dify_env then never sets INIT_PASSWORD again:
# not when the bootstrap is applied again, nor on a rebuilt instance whose user data still has the password),
# `compose up -d` recreates the containers whose environment had it, and the timer disables itself. A failed
# `compose up` leaves the timer on, and the next run repeats it.
scrub_init_password() {
    local env_file="$DIFY_DIR/docker/.env" setup
    [ -f "$STATE_DIR/done" ] || return 0
    # console_setup: over https once nginx serves it (port 80 then only redirects, and curl -f takes a 301 for an answer).
    setup="$(console_setup)" || return 0
    grep -Eq '"step": *"finished"' <<<"$setup" || return 0
    if [ -n "$(get_env_value "$env_file" INIT_PASSWORD)" ]; then
        set_env_value "$env_file" INIT_PASSWORD ""
        set_env_value "$CONFIG_FILE" DIFY_INIT_PASSWORD "''"
    fi
    mkdir -p "$DATA_MOUNT/dify"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$DATA_MOUNT/dify/admin-exists"
    compose up -d
    systemctl disable --now dify-init-password.timer
    log "the first admin exists: INIT_PASSWORD removed"
}

# on_error LINE: the ERR trap. A step that said why (fail_with) keeps its reason in the status file.
on_error() {
    local line="$1"
    printf 'bootstrap failed at line %s; see %s\n' "$line" "$LOG_FILE" >>"$STATE_DIR/failed"
    if ! grep -qx 'state=failed' "$STATE_DIR/status" 2>/dev/null; then
        set_status failed "$CURRENT_STEP" "failed at line $line of the bootstrap; see $LOG_FILE"
    fi
    log "FAILED at line $line"
}

# main: the whole bootstrap. cloud-init runs it once per instance; DifyInstanceConfiguration runs it again on the
# running instance to apply new settings (a new difyVersion), which every step allows: the data disk is found
# mounted with its file system (never formatted again), an installed Docker is kept and restarted only for changed
# registry mirrors, fetch_dify replaces /opt/dify with the new release (the old tree with its .env goes; Dify's
# data and secrets are on the data disk), prepare_dify writes .env anew from the new release's .env.example with
# the kept secrets and the settings, start_dify pulls every image before `compose up -d` (Dify is down only while
# its containers are recreated), the new api container runs the database migrations once as it starts, and the
# console is waited for.
main() {
    mkdir -p "$STATE_DIR"
    rm -f "$STATE_DIR/done" "$STATE_DIR/failed"
    exec > >(tee -a "$LOG_FILE") 2>&1
    trap 'on_error "$LINENO"' ERR
    step "starting the bootstrap"
    # shellcheck source=/dev/null
    . "$CONFIG_FILE"
    log "bootstrapping Dify $DIFY_VERSION for $DIFY_PUBLIC_URL"

    # Before Docker is installed: the package starts Docker, which must find the data disk mounted.
    step "waiting for the data disk"
    mount_data_disk "$DIFY_DATA_DISK_SERIAL"
    step "installing Docker"
    retry 3 30 install_docker
    configure_docker
    step "fetching Dify $DIFY_VERSION"
    retry 3 30 fetch_dify "$DIFY_VERSION" "$DIFY_DIR"
    link_volumes_to_data_disk

    step "preparing Dify's settings"
    prepare_dify
    start_dify
    wait_for_migrations
    step "waiting for the console"
    wait_until 900 10 "Dify's console API answering" console_answers
    date -u +%Y-%m-%dT%H:%M:%SZ >"$STATE_DIR/done"
    set_status "done" "Dify is up" "Dify $DIFY_VERSION at $DIFY_PUBLIC_URL"
    log "Dify $DIFY_VERSION is up at $DIFY_PUBLIC_URL"
}

# Tests source this file with DIFY_BOOTSTRAP_SOURCE_ONLY=1 to exercise the functions on their own.
# dify-init-password.service runs it with "scrub-init-password", dify-certificate-renewal.service with
# "renew-certificate".
if [ "${DIFY_BOOTSTRAP_SOURCE_ONLY:-0}" != 1 ]; then
    case "${1:-}" in
        scrub-init-password) scrub_init_password 2>&1 | tee -a "$LOG_FILE" ;;
        renew-certificate) renew_certificate 2>&1 | tee -a "$LOG_FILE" ;;
        *) main "$@" ;;
    esac
fi
