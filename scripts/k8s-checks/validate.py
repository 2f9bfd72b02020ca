"""Schema validation of every rendered Kubernetes object (scripts/k8s-checks/run.sh).

- Kubernetes' own kinds (apiVersion v1, apps/v1, *.k8s.io, autoscaling, policy, ...) are
  validated by kubernetes-validate against the API's schemas of KUBERNETES_VERSION, strictly
  (an unknown field is an error, as `kubectl apply --validate=strict` would make it).
- Custom resources (CloudNativePG Cluster and ScheduledBackup, Barman Cloud ObjectStore,
  cert-manager Certificate and Issuer, External Secrets ExternalSecret) are validated against
  the openAPIV3Schema of their CRD, kept in k8s/schemas/ (each file names the release it was
  taken from), also strictly: an object schema without `additionalProperties` or
  `x-kubernetes-preserve-unknown-fields` accepts no other field (the API server would prune it
  silently, which is how a misspelt field goes unnoticed).
- A kind with neither is an error: every object we ship is checked.

Usage: validate.py SCHEMA_DIR FILE.yaml...; exits 1 when anything fails.
"""

import copy
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "1.32.0")


def strict(schema):
    """A copy of an OpenAPI v3 (CRD structural) schema that refuses unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            # OpenAPI's `nullable` is not JSON Schema: allow null where it is set.
            if node.get("nullable") and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # A CRD schema leaves apiVersion, kind and metadata to the API server.
    schema.setdefault("properties", {})
    for field in ("apiVersion", "kind"):
        schema["properties"].setdefault(field, {"type": "string"})
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def crd_schemas(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                out[name[: -len(".json")]] = strict(json.load(f)["schema"])
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    schemas = crd_schemas(sys.argv[1])
    failures = 0
    checked = 0
    for filename in sys.argv[2:]:
        with open(filename) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            api_version = doc.get("apiVersion", "")
            kind = doc.get("kind", "")
            name = f"{filename}: {kind} {doc.get('metadata', {}).get('name', '?')}"
            group, _, version = api_version.rpartition("/")
            key = f"{group}_{version}_{kind}"
            checked += 1
            if key in schemas:
                errors = sorted(
                    jsonschema.Draft7Validator(schemas[key]).iter_errors(doc),
                    key=lambda e: list(e.path),
                )
                for e in errors:
                    path = ".".join(str(p) for p in e.path)
                    print(f"ERROR {name} ({api_version}, CRD schema): {path}: {e.message}")
                failures += bool(errors)
                continue
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                print(
                    f"ERROR {name}: no schema for {kind} {api_version}: neither a Kubernetes "
                    f"kind nor a CRD with a schema in {sys.argv[1]}"
                )
                failures += 1
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                print(f"ERROR {name} (Kubernetes {KUBERNETES_VERSION}): {path}: {e.message}")
                failures += 1
    print(f"schema validation: {checked - failures} passed, {failures} failed")
    sys.exit(1 if failures or not checked else 0)


if __name__ == "__main__":
    main()
