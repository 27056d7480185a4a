#!/usr/bin/env bash
# Validates the compose file without a Docker engine: YAML structure and the settings Shardflow
# depends on (checked with Python and PyYAML), the Prometheus config beside it, and, when the docker
# CLI has the compose plugin, `docker compose config -q` too.
#   scripts/validate-compose.sh [path/to/docker-compose.yml]   (default: compose/docker-compose.yml)
# Exit status 0 when every check passes. PyYAML is installed into .tools/python when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compose_file="${1:-$root/compose/docker-compose.yml}"
[ -f "$compose_file" ] || { echo "error: $compose_file not found" >&2; exit 2; }

# PyYAML: the system's if it has it, else a private copy in .tools/python (installed once).
pydeps="$root/.tools/python"
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  if ! PYTHONPATH="$pydeps" python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "validate-compose: installing PyYAML into .tools/python" >&2
    mkdir -p "$pydeps"
    python3 -m pip install -q --disable-pip-version-check --target "$pydeps" 'PyYAML>=6' >&2
  fi
  export PYTHONPATH="$pydeps${PYTHONPATH:+:$PYTHONPATH}"
fi

python3 - "$compose_file" <<'PY'
import os, shlex, sys
import yaml

path = sys.argv[1]
base = os.path.dirname(os.path.abspath(path))
errors = []
def fail(msg): errors.append(msg)

with open(path) as f:
    doc = yaml.safe_load(f)  # safe_load resolves the << merge keys the file uses
if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
    print("error: no services in " + path); sys.exit(1)
services = doc["services"]
declared_volumes = set((doc.get("volumes") or {}).keys())

def command(svc):
    c = svc.get("command")
    if c is None: return []
    return shlex.split(c) if isinstance(c, str) else [str(x) for x in c]

def env(svc):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in e)
    return {k: (None if v is None else str(v)) for k, v in e.items()}

def flag(cmd, name):
    """The value after --name (or in --name=value), or None."""
    for i, arg in enumerate(cmd):
        if arg == name and i + 1 < len(cmd): return cmd[i + 1]
        if arg.startswith(name + "="): return arg.split("=", 1)[1]
    return None

def depends(svc):
    d = svc.get("depends_on") or {}
    if isinstance(d, list): return {name: "service_started" for name in d}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in d.items()}

def mounts(svc):
    """(source, target, kind) for each volume entry; kind is volume or bind."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1: out.append((None, parts[0], "volume")); continue
            src, tgt = parts[0], parts[1]
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            out.append((src, tgt, kind))
        else:
            out.append((v.get("source"), v.get("target"), v.get("type", "volume")))
    return out

host_ports = {}
for name, svc in services.items():
    if not isinstance(svc, dict): fail(f"{name}: not a mapping"); continue
    if "image" not in svc and "build" not in svc: fail(f"{name}: has neither image nor build")
    b = svc.get("build")
    if b is not None:
        ctx = b if isinstance(b, str) else b.get("context", ".")
        ctx_dir = os.path.normpath(os.path.join(base, ctx))
        dockerfile = "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile")
        if not os.path.isfile(os.path.join(ctx_dir, dockerfile)):
            fail(f"{name}: build {ctx}/{dockerfile} not found")
    for dep, cond in depends(svc).items():
        if dep not in services: fail(f"{name}: depends_on unknown service {dep}")
        elif cond not in ("service_started", "service_healthy", "service_completed_successfully"):
            fail(f"{name}: unknown depends_on condition {cond}")
        elif cond == "service_healthy" and "healthcheck" not in services[dep]:
            fail(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
    for src, tgt, kind in mounts(svc):
        if not tgt or not tgt.startswith("/"): fail(f"{name}: volume target {tgt!r} is not an absolute path")
        if kind == "volume" and src and src not in declared_volumes:
            fail(f"{name}: named volume {src} is not declared under top-level volumes")
        if kind == "bind" and src and not os.path.exists(os.path.normpath(os.path.join(base, src))):
            fail(f"{name}: bind mount source {src} does not exist")
    for p in svc.get("ports") or []:
        spec = str(p).split("/")[0]
        host = spec.rsplit(":", 1)[0] if ":" in spec else None
        if host:
            if host in host_ports: fail(f"{name}: host port {host} also published by {host_ports[host]}")
            host_ports[host] = name

# Kafka: the official image in KRaft mode, configured for one node.
kafka = services.get("kafka")
if not kafka:
    fail("no kafka service")
else:
    if not str(kafka.get("image", "")).startswith("apache/kafka:"): fail("kafka: image is not apache/kafka:<version>")
    ke = env(kafka)
    for key in ["KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
                "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE"]:
        if not ke.get(key): fail(f"kafka: {key} not set")
    if set((ke.get("KAFKA_PROCESS_ROLES") or "").split(",")) != {"broker", "controller"}:
        fail("kafka: KAFKA_PROCESS_ROLES must be broker,controller for a single KRaft node")
    for key in ["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]:
        if ke.get(key) not in (None, "1"): fail(f"kafka: {key} must be 1 on a single node")
    if (ke.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") or "").lower() != "false":
        fail("kafka: KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false (the topics job creates them)")
    if "kafka:9092" not in (ke.get("KAFKA_ADVERTISED_LISTENERS") or ""):
        fail("kafka: KAFKA_ADVERTISED_LISTENERS must advertise kafka:9092 to the other containers")
    listener_names = {l.split("://")[0] for l in (ke.get("KAFKA_LISTENERS") or "").split(",") if "://" in l}
    mapped = {m.split(":")[0] for m in (ke.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP") or "").split(",")}
    if not listener_names <= mapped: fail(f"kafka: listeners {sorted(listener_names - mapped)} missing from the protocol map")
    if ke.get("KAFKA_CONTROLLER_LISTENER_NAMES") not in listener_names:
        fail("kafka: the controller listener is not among KAFKA_LISTENERS")
    voters = ke.get("KAFKA_CONTROLLER_QUORUM_VOTERS") or ""
    if not voters.startswith(f"{ke.get('KAFKA_NODE_ID')}@"): fail("kafka: the quorum voters do not name this node")
    if "healthcheck" not in kafka: fail("kafka: no healthcheck")

def by_subcommand(*words):
    return {n: s for n, s in services.items() if isinstance(s, dict) and command(s)[:len(words)] == list(words)}

topics = by_subcommand("topics", "create")
if len(topics) != 1: fail("need exactly one service running `shardflow topics create`")
for name, svc in topics.items():
    cmd = command(svc)
    if flag(cmd, "--brokers") != "kafka:9092": fail(f"{name}: --brokers must be kafka:9092")
    if flag(cmd, "--partitions") != "100": fail(f"{name}: --partitions must be 100")
    if depends(svc).get("kafka") != "service_healthy": fail(f"{name}: must wait for kafka to be healthy")

mock = by_subcommand("mock-llm")
if len(mock) != 1: fail("need exactly one service running `shardflow mock-llm`")
mock_name = next(iter(mock), None)
for name, svc in mock.items():
    cmd = command(svc)
    expected = {"--host": "0.0.0.0", "--port": "8080", "--latency-median": "1s", "--latency-p99": "4s"}
    for f_, v in expected.items():
        if flag(cmd, f_) != v: fail(f"{name}: {f_} must be {v}")

workers = by_subcommand("worker")
if len(workers) < 2: fail(f"need at least two worker services, found {len(workers)}")
data_volumes = {}
for name, svc in workers.items():
    cmd = command(svc)
    expected = {"--brokers": "kafka:9092", "--data-dir": "/data", "--http-host": "0.0.0.0",
                "--http-port": "9090", "--log-format": "json"}
    for f_, v in expected.items():
        if flag(cmd, f_) != v: fail(f"{name}: {f_} must be {v} (found {flag(cmd, f_)})")
    if env(svc).get("SHARDFLOW_LLM_BASE_URL") != f"http://{mock_name}:8080":
        fail(f"{name}: SHARDFLOW_LLM_BASE_URL must be http://{mock_name}:8080")
    data = [src for src, tgt, kind in mounts(svc) if tgt == "/data" and kind == "volume" and src]
    if len(data) != 1: fail(f"{name}: needs one named volume at /data")
    else:
        # Each worker stands for a host of its own: its stores are a cache of the shard logs, restored
        # from Kafka when the group gives it a shard, so no two workers here share a volume.
        if data[0] in data_volumes: fail(f"{name}: mounts {data[0]} at /data, as {data_volumes[data[0]]} does: each worker has a data volume of its own")
        data_volumes[data[0]] = name
    deps = depends(svc)
    if deps.get("kafka") != "service_healthy": fail(f"{name}: must wait for kafka to be healthy")
    for t in topics:
        if deps.get(t) != "service_completed_successfully": fail(f"{name}: must wait for {t} to complete")

# Prometheus scrapes every worker's /metrics.
proms = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("prom/prometheus")}
if len(proms) != 1: fail("need exactly one prom/prometheus service")
for name, svc in proms.items():
    configs = [src for src, tgt, kind in mounts(svc) if kind == "bind" and tgt.endswith("prometheus.yml")]
    if len(configs) != 1: fail(f"{name}: no prometheus.yml mounted"); continue
    config_path = os.path.normpath(os.path.join(base, configs[0]))
    if not os.path.isfile(config_path): continue  # reported above
    with open(config_path) as f:
        prom = yaml.safe_load(f)
    targets, paths = set(), set()
    for job in (prom or {}).get("scrape_configs") or []:
        paths.add(job.get("metrics_path", "/metrics"))
        for sc in job.get("static_configs") or []:
            targets.update(sc.get("targets") or [])
    if paths != {"/metrics"}: fail(f"{name}: scrape metrics_path must be /metrics, found {sorted(paths)}")
    for w in workers:
        if f"{w}:9090" not in targets: fail(f"{name}: prometheus.yml does not scrape {w}:9090")
    for t in targets - {f"{w}:9090" for w in workers}:
        fail(f"{name}: prometheus.yml scrapes {t}, which is no worker")

for e in errors: print("error: " + e)
if errors: sys.exit(1)
print(f"validate-compose: {len(services)} services, {len(workers)} workers: structure ok")
PY

# The compose plugin renders the file without an engine; use it when the docker CLI has it.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  docker compose -f "$compose_file" config -q
  echo "validate-compose: docker compose config ok"
else
  echo "validate-compose: docker compose plugin not available; skipped docker compose config"
fi
