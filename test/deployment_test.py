"""The docker-compose stack, the Dockerfile and the Grafana provisioning agree with each other and
with the repository. No Docker engine runs here, so this is what can be proved without one."""
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
mounts = {}
for name, service in services.items():
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        check(os.path.exists(os.path.join(root, source)), f"{name} mounts missing {source}")
        mounts[target] = source

command = services["gophermq"]["command"]
config_path = command[command.index("--config") + 1] if "--config" in command else None
check(config_path in mounts, "gophermq reads a config file mounted from the repository")
if config_path in mounts:
    check(isinstance(load_yaml(mounts[config_path]), dict), "gophermq config file is a YAML map")

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
              "async queue", "dropped", "memory", "cpu"]:
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

for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
