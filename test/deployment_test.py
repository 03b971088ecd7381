"""The docker-compose stack, the Dockerfile, the systemd unit and the Grafana provisioning agree
with each other and with the repository. No Docker engine runs here, so this is what can be proved without one."""
import json
import os
import re
import sys

import yaml

root = sys.argv[1]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def load_yaml(relative):
    with open(os.path.join(root, relative)) as f:
        return yaml.safe_load(f)


compose = load_yaml("docker-compose.yml")
services = compose["services"]
check(set(services) == {"gophermq", "prometheus", "grafana"}, f"services: {sorted(services)}")
check(services["gophermq"]["build"] == ".", "gophermq is built from the repository")
check("9001:9001" in services["gophermq"]["ports"], "metrics port published")
named_volumes = set(compose.get("volumes") or {})
mounts = {}
for name, service in services.items():
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            check(os.path.exists(os.path.join(root, source)), f"{name} mounts missing {source}")
        else:
            check(source in named_volumes, f"{name} mounts undeclared volume {source}")
        mounts[target] = source

command = services["gophermq"]["command"]
config_path = command[command.index("--config") + 1] if "--config" in command else None
check(config_path in mounts, "gophermq reads a config file mounted from the repository")
storage_dir = None
if config_path in mounts:
    shipped_config = load_yaml(mounts[config_path])
    check(isinstance(shipped_config, dict), "gophermq config file is a YAML map")
    storage_dir = (shipped_config.get("storage") or {}).get("dir")
# Durable by default: the log lives in a named volume, so it outlives the container.
check(storage_dir, "the shipped config sets storage.dir")
check(storage_dir in mounts and mounts[storage_dir] in named_volumes,
      f"storage.dir {storage_dir} is a named volume of the compose file")

prometheus = load_yaml("metrics/prometheus/prometheus.yml")
check("/etc/prometheus/prometheus.yml" in mounts, "Prometheus config mounted")
targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
check(targets == ["gophermq:9001"], f"scrape targets {targets}")
check(prometheus["scrape_configs"][0]["job_name"] == "gophermq", "job is gophermq")

datasources = load_yaml("metrics/grafana/provisioning/datasources/prometheus.yml")["datasources"]
check(len(datasources) == 1 and datasources[0]["url"] == "http://prometheus:9090",
      "datasource points at the prometheus service")
uid = datasources[0]["uid"]
providers = load_yaml("metrics/grafana/provisioning/dashboards/gophermq.yml")["providers"]
dashboards_dir = providers[0]["options"]["path"]
check(mounts.get(dashboards_dir) == "./metrics/grafana/dashboards",
      "the dashboard provider reads the mounted dashboards")
check(mounts.get("/etc/grafana/provisioning") == "./metrics/grafana/provisioning",
      "provisioning mounted")

with open(os.path.join(root, "metrics/grafana/dashboards/gophermq.json")) as f:
    dashboard = json.load(f)
for panel in dashboard["panels"]:
    check(panel["datasource"]["uid"] == uid, f"panel {panel['title']} uses the provisioned source")
    for target in panel["targets"]:
        check(target["expr"].strip() != "", f"panel {panel['title']} has an empty query")
titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
for topic in ["request rate", "latency", "pending messages", "pending bytes", "subscriptions",
              "async queue", "dropped", "memory", "cpu", "storage: log size", "fsync",
              "recovery", "storage full"]:
    check(topic in titles, f"dashboard lacks a {topic} panel")

with open(os.path.join(root, "Dockerfile")) as f:
    dockerfile = f.read()
for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
    for path in source.split():
        check(os.path.exists(os.path.join(root, path)), f"Dockerfile copies missing {path}")
check(re.search(r"^FROM debian:bookworm AS build$", dockerfile, re.M), "build stage on bookworm")
check(re.search(r"^FROM debian:bookworm-slim$", dockerfile, re.M), "runtime on bookworm-slim")
check(re.search(r"^USER gophermq$", dockerfile, re.M), "runs as a non-root user")
check(re.search(r"^HEALTHCHECK .*/ready", dockerfile, re.M | re.S), "health check on /ready")
check('ENTRYPOINT ["gophermq"]' in dockerfile and 'CMD ["broker"]' in dockerfile, "entrypoint")
check(re.search(rf"^VOLUME {re.escape(str(storage_dir))}$", dockerfile, re.M),
      f"the image declares VOLUME {storage_dir}")
check(re.search(rf"^ENV GOPHERMQ_STORAGE_DIR={re.escape(str(storage_dir))}$", dockerfile, re.M),
      f"the image runs with storage.dir {storage_dir} without a config file")
check(re.search(rf"install -d -o gophermq -g gophermq .*{re.escape(str(storage_dir))}$", dockerfile,
                re.M), f"{storage_dir} is created owned by the gophermq user")
# Every source folder the build compiles is copied into the build stage.
with open(os.path.join(root, "CMakeLists.txt")) as f:
    cmake = f.read()
copied = {path for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M)
          for path in source.split()}
for folder in sorted(set(re.findall(r"^\s+([a-z]+)/\w+\.cpp", cmake, re.M)) |
                     set(re.findall(r"^add_subdirectory\(([a-z]+)\)", cmake, re.M)) - {"test"}):
    check(folder in copied, f"Dockerfile does not copy {folder}/, which the build needs")

with open(os.path.join(root, "systemd/gophermq.service.in")) as f:
    unit = f.read()
check(re.search(r"^StateDirectory=gophermq$", unit, re.M), "the unit has StateDirectory=gophermq")
check(storage_dir == "/var/lib/gophermq", "the shipped storage.dir is the unit's state directory")

# The secured override (docker-compose.secured.yml): every variable it sets is a documented key,
# the broker's TLS files and auth.file are in what it mounts, Prometheus runs the secured scrape
# config, and the CA and token files that config names are mounted into Prometheus. ./secrets is
# the operator's, so only the repository's own sources must exist.
secured = load_yaml("docker-compose.secured.yml")
check(set(secured["services"]) <= set(services), "the override only changes services of the stack")
with open(os.path.join(root, "README.md")) as f:
    documented_keys = set(re.findall(r"^\| `([a-z.-]+)` \|", f.read(), re.M))
secured_mounts = {}
for name, service in secured["services"].items():
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith("./secrets"):
            check(os.path.exists(os.path.join(root, source)), f"{name} mounts missing {source}")
        secured_mounts[target] = source
environment = secured["services"]["gophermq"]["environment"]
for variable in environment:
    key = variable.removeprefix("GOPHERMQ_").lower().replace("__", "-").replace("_", ".")
    check(key in documented_keys, f"{variable} is no key of the README's table ({key})")
for key in ["auth.file", "monitoring.token", "monitoring.tls", "tls.cert-file", "tls.key-file"]:
    variable = "GOPHERMQ_" + key.upper().replace("-", "__").replace(".", "_")
    check(variable in environment, f"the secured override does not set {key}")
for variable in ["GOPHERMQ_AUTH_FILE", "GOPHERMQ_TLS_CERT__FILE", "GOPHERMQ_TLS_KEY__FILE"]:
    path = environment.get(variable, "")
    check(any(path.startswith(target + "/") for target in secured_mounts),
          f"{variable} {path} is not in a mounted directory")
check(secured_mounts.get("/etc/prometheus/prometheus.yml")
      == "./metrics/prometheus/prometheus-secured.yml", "Prometheus runs the secured config")
secured_scrape = load_yaml("metrics/prometheus/prometheus-secured.yml")["scrape_configs"][0]
check(secured_scrape["scheme"] == "https", "the secured scrape uses https")
check(secured_scrape["authorization"]["type"] == "Bearer", "the secured scrape sends a bearer token")
for path in [secured_scrape["tls_config"]["ca_file"],
             secured_scrape["authorization"]["credentials_file"]]:
    check(path in secured_mounts, f"the secured scrape reads {path}, which is not mounted")
check([t for c in secured_scrape["static_configs"] for t in c["targets"]] == targets,
      "the secured scrape has the plain one's targets")
check(re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M),
      "systemctl reload sends SIGHUP, which reloads tokens and certificates")

for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
