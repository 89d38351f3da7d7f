"""Checks the deployment artefacts: the Helm chart renders and lints with every values file,
every rendered manifest is valid against the Kubernetes schemas, and docker/Dockerfile copies
every binary the workspace builds into a runtime stage.

Run by scripts/check-deploy.sh, which installs the pinned tools first.
Usage: check_deploy.py REPO_ROOT CARGO_METADATA_JSON
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

# The Kubernetes release the manifests are validated against (the chart needs >= 1.30).
KUBE_VERSION = "1.33.0"
RELEASE = "livecast"
NAMESPACE = "livecast"
# Kinds from CRDs that are optional in the chart; no upstream schema ships with the validator.
CRD_GROUPS = ("monitoring.coreos.com/", "autoscaling.k8s.io/")
# Every kind the chart must produce with its default values.
EXPECTED_KINDS = {
    "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
    "HorizontalPodAutoscaler", "Ingress",
}


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")
        print(f"  FAIL {where}: {message}")


def lint(chart: Path, values_file: Path, values: dict, problems: Problems) -> None:
    report = helm.lint(chart, values, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    for message in report.get("messages") or []:
        # 1 info, 2 warning, 3 error; strict lint counts warnings as problems.
        if message.get("severity", 0) >= 2:
            problems.add(f"lint {values_file.name}", f"{message.get('path')}: {message.get('error')}")
    for error in report.get("errors") or []:
        problems.add(f"lint {values_file.name}", str(error))


def render(chart: Path, values_file: Path, values: dict, problems: Problems) -> list[dict]:
    with helm.Chart.load(chart) as loaded:
        try:
            rendered = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as error:
            problems.add(f"render {values_file.name}", str(error))
            return []
    resources = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as error:
            problems.add(f"{values_file.name} {template}", f"not YAML: {error}")
            continue
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict):
                problems.add(f"{values_file.name} {template}", "a document is not a mapping")
                continue
            document["__template"] = template
            resources.append(document)
    return resources


def validate(values_file: Path, resources: list[dict], problems: Problems) -> tuple[int, int]:
    validated = skipped = 0
    seen = set()
    for resource in resources:
        template = resource.pop("__template")
        kind, name = resource.get("kind"), resource.get("metadata", {}).get("name")
        where = f"{values_file.name} {template} {kind}/{name}"
        if (kind, name) in seen:
            problems.add(where, "rendered twice")
        seen.add((kind, name))
        if str(resource.get("apiVersion", "")).startswith(CRD_GROUPS):
            skipped += 1
            continue
        try:
            kubernetes_validate.validate(resource, KUBE_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            problems.add(where, f"{error.message} at {path or '/'}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.add(where, f"no schema: {error}")
    return validated, skipped


def check_chart_semantics(values_file: Path, resources: list[dict], problems: Problems) -> None:
    """What a schema cannot see: the settings that make upgrades harmless."""
    kinds = {r.get("kind") for r in resources}
    if values_file.name == "values.yaml":
        for kind in sorted(EXPECTED_KINDS - kinds):
            problems.add(values_file.name, f"renders no {kind}")
    for resource in resources:
        if resource.get("kind") != "Deployment":
            continue
        name = resource["metadata"]["name"]
        where = f"{values_file.name} Deployment/{name}"
        pod = resource["spec"]["template"]["spec"]
        env = {}
        for container in pod["containers"]:
            probes = {p: container.get(p, {}).get("httpGet", {}).get("path")
                      for p in ("livenessProbe", "readinessProbe")}
            if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                problems.add(where, f"probes are {probes}")
            context = container.get("securityContext", {})
            if not context.get("readOnlyRootFilesystem") or \
                    context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.add(where, "container must have a read-only root and drop ALL")
            for ref in container.get("envFrom", []):
                env.update(configmap_data(resources, ref["configMapRef"]["name"]))
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.add(where, "pod must run as non-root")
        drain = int(env.get("LIVECAST_HTTP__DRAIN_SECONDS", "10"))
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= drain:
            problems.add(where, f"terminationGracePeriodSeconds {grace} <= drain {drain}")
        if name.endswith("streaming-edge"):
            unavailable = resource["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"]
            if unavailable != 0:
                problems.add(where, f"maxUnavailable must be 0, is {unavailable}")


def configmap_data(resources: list[dict], name: str) -> dict:
    for resource in resources:
        if resource.get("kind") == "ConfigMap" and resource["metadata"]["name"] == name:
            return resource.get("data") or {}
    return {}


# Workspace packages whose binaries are not shipped in an image, and why.
NOT_SHIPPED = {"livecast-bench": "benchmarks run next to their peers on one machine"}


def check_dockerfile(root: Path, metadata: dict, problems: Problems) -> list[str]:
    """Every binary the workspace builds has a stage named after it (`--target <bin>`) that
    copies it from the build stage and runs it, and the build stage builds it."""
    binaries = sorted(
        target["name"]
        for package in metadata["packages"]
        if package["name"] not in NOT_SHIPPED
        for target in package["targets"]
        if "bin" in target["kind"]
    )
    dockerfile = (root / "docker" / "Dockerfile").read_text()
    # Join continuation lines, drop comments.
    text = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    stages: dict[str, list[str]] = {}
    current = None
    for line in lines:
        match = re.match(r"(?i)^FROM\s+\S+(?:\s+AS\s+(\S+))?", line)
        if match:
            current = match.group(1) or f"stage{len(stages)}"
            stages[current] = []
        elif current is not None and line:
            stages[current].append(line)
    built = set(re.findall(r"cargo build[^\n]*", text))
    built_bins = {name for command in built for name in re.findall(r"--bin\s+(\S+)", command)}
    for binary in binaries:
        if binary not in built_bins:
            problems.add("docker/Dockerfile", f"cargo build does not build --bin {binary}")
        if binary not in stages:
            problems.add("docker/Dockerfile", f"no runtime stage (--target {binary}) for binary {binary}")
            continue
        body = stages[binary]
        if not any(re.match(rf"(?i)^COPY\s+--from=\S+\s+\S*/{re.escape(binary)}\s", line)
                   for line in body):
            problems.add("docker/Dockerfile", f"stage {binary} does not copy the {binary} binary")
        if not any(re.match(r"(?i)^ENTRYPOINT\b", line) and f"/{binary}\"" in line for line in body):
            problems.add("docker/Dockerfile", f"stage {binary} does not run {binary}")
    return binaries


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    metadata = json.loads(Path(sys.argv[2]).read_text())
    chart = root / "deploy" / "helm" / "livecast"
    problems = Problems()
    helm.disable_logging()

    values_files = [chart / "values.yaml", *sorted(chart.glob("values-region-*.yaml"))]
    if len(values_files) < 2:
        problems.add(str(chart), "no values-region-*.yaml example")
    total_validated = total_skipped = 0
    for values_file in values_files:
        # values.yaml is the chart's own default; region files are layered on it.
        values = {} if values_file.name == "values.yaml" else yaml.safe_load(values_file.read_text()) or {}
        lint(chart, values_file, values, problems)
        resources = render(chart, values_file, values, problems)
        if not resources and not problems.items:
            problems.add(values_file.name, "rendered nothing")
        check_chart_semantics(values_file, resources, problems)
        validated, skipped = validate(values_file, resources, problems)
        total_validated += validated
        total_skipped += skipped
        print(f"  {values_file.name}: {validated} manifests valid against Kubernetes {KUBE_VERSION}"
              f"{f', {skipped} CRD objects not schema-checked' if skipped else ''}")

    binaries = check_dockerfile(root, metadata, problems)
    print(f"  docker/Dockerfile: runtime stages checked for {', '.join(sorted(binaries))}")

    if problems.items:
        print(f"check-deploy: FAILED, {len(problems.items)} problem(s)")
        return 1
    print(f"check-deploy: OK, chart linted and rendered with {len(values_files)} values files, "
          f"{total_validated} manifests valid (Kubernetes {KUBE_VERSION}), "
          f"{len(binaries)} binaries in docker/Dockerfile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
