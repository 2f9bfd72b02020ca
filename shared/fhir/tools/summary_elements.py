"""Generates ../schema/summary-elements.json: for each R4 resource type, its top-level elements
marked isSummary (the `_summary=true` subset) and its mandatory ones (min 1).

Source: the `fhir.resources` package (8.3.0, PyPI), whose R4B models carry each element's
isSummary flag (`summary_element_property`) and cardinality; R4B is R4 4.0.1 plus corrections,
and the flags of the types both have agree except where R4B changed an element. Types only R4
has (MedicinalProduct*, EffectEvidenceSynthesis, ...) are left out: for them the filter keeps the
mandatory elements known from the JSON Schema and every element (see `elements.rs`).

    pip download --no-deps fhir.resources==8.3.0 && unzip fhir_resources-*.whl
    python3 summary_elements.py <unzipped>/fhir/resources/R4B ../schema/fhir.schema.json > ../schema/summary-elements.json
"""
import ast, json, os, sys

models, schema_path = sys.argv[1], sys.argv[2]
r4_types = set(json.load(open(schema_path))["discriminator"]["mapping"].keys())
# Resource and DomainResource elements (isSummary: id, meta, implicitRules; none is mandatory).
BASE = ["id", "meta", "implicitRules"]
out = {}
for name in sorted(os.listdir(models)):
    if not name.endswith(".py"):
        continue
    tree = ast.parse(open(os.path.join(models, name)).read())
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        rtype = None
        for st in cls.body:
            if isinstance(st, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__resource_type__" for t in st.targets
            ):
                rtype = ast.literal_eval(st.value)
        if rtype != cls.name or rtype not in r4_types:
            continue
        summary, mandatory = list(BASE), []
        for st in cls.body:
            if not (isinstance(st, ast.AnnAssign) and isinstance(st.value, ast.Call)):
                continue
            kw = {k.arg: k.value for k in st.value.keywords}
            alias = ast.literal_eval(kw["alias"]) if "alias" in kw else None
            if not alias or alias.startswith("_"):
                continue
            extra = ast.literal_eval(kw["json_schema_extra"]) if "json_schema_extra" in kw else {}
            if not extra.get("element_property"):
                continue
            optional = "None" in ast.unparse(st.annotation)
            if extra.get("summary_element_property"):
                summary.append(alias)
            if extra.get("element_required") or not optional:
                mandatory.append(alias)
        out[rtype] = {"summary": summary, "mandatory": mandatory}
json.dump(out, sys.stdout, indent=0, sort_keys=True)
print()
