"""Real FHIR clients, unmodified, against a running Custodian suite.

fhirpy (Beda Software), fhirclient (SMART on FHIR) and fhir.resources (pydantic models) do
what an EHR vendor's integration would do: discover the server, create, read, search, count,
page, include, update, patch, refresh, conditionally update and delete, and a Bulk Data
export is kicked off, polled and downloaded. Every resource the
server returns is validated with fhir.resources' R4B models (R4B's JSON is R4's for these
resources). Each check prints `ok NAME` or `FAIL NAME: why`; the exit status is the number of
failures.

Usage: check.py BASE_URL, with FHIR_TOKEN set to a practitioner's bearer token (one whose
organisation becomes the custodian of the patients it registers).
"""

import os
import sys
import traceback
import uuid

import requests
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation as ObservationModel
from fhir.resources.R4B.patient import Patient as PatientModel
from fhirclient import server as fhirclient_server
from fhirclient.models.observation import Observation as FcObservation
from fhirclient.models.patient import Patient as FcPatient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, ResourceNotFound

BASE = sys.argv[1].rstrip("/") + "/fhir"
TOKEN = os.environ["FHIR_TOKEN"]
RUN = uuid.uuid4().hex[:12]
SYSTEM = "urn:custodian:fhir-clients"
FAILURES = []


def check(name):
    def wrap(fn):
        try:
            fn()
            print(f"ok {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            FAILURES.append(name)
            print(f"FAIL {name}: {e!r}", flush=True)
            traceback.print_exc(file=sys.stdout)
        return fn

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


client = SyncFHIRClient(BASE, authorization=f"Bearer {TOKEN}")
state = {}


def patient_body(family, given, identifier):
    return {
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1990-04-01",
        "identifier": [{"system": SYSTEM, "value": identifier}],
    }


@check("fhir.resources: the CapabilityStatement is valid R4")
def capability():
    body = requests.get(f"{BASE}/metadata", timeout=10).json()
    statement = CapabilityStatement.model_validate(body)
    expect(statement.fhirVersion == "4.0.1", f"fhirVersion {statement.fhirVersion}")


@check("fhirpy: create and read a Patient")
def create_and_read():
    patient = client.resource("Patient", **patient_body(f"Client{RUN}", "Pia", f"p-{RUN}"))
    patient.save()
    expect(patient.id, "no id after save")
    state["patient"] = patient
    read = client.reference("Patient", patient.id).to_resource()
    expect(read["name"][0]["family"] == f"Client{RUN}", f"read back {read.serialize()}")
    PatientModel.model_validate(read.serialize())


@check("fhirpy: search, count and get")
def search_and_count():
    found = client.resources("Patient").search(identifier=f"{SYSTEM}|p-{RUN}").fetch()
    expect(len(found) == 1, f"{len(found)} matches")
    count = client.resources("Patient").search(family=f"Client{RUN}").count()
    expect(count == 1, f"count() = {count}")
    got = client.resources("Patient").search(identifier=f"{SYSTEM}|p-{RUN}").get()
    expect(got.id == state["patient"].id, "get() found another patient")
    missing = client.resources("Patient").search(identifier=f"{SYSTEM}|nobody-{RUN}")
    expect(missing.count() == 0, "count() of nothing")
    try:
        missing.get()
        raise AssertionError("get() of nothing returned something")
    except ResourceNotFound:
        pass


@check("fhirpy: Observations, paging and _include")
def observations():
    patient = state["patient"]
    for i in range(5):
        client.resource(
            "Observation",
            status="final",
            code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            subject=patient.to_reference(),
            effectiveDateTime=f"2026-11-0{i + 1}T10:00:00Z",
            valueQuantity={
                "value": 60 + i,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        ).save()
    search = client.resources("Observation").search(subject=patient.to_reference().reference)
    every = list(search.limit(2))  # iterating follows the `next` links
    expect(len(every) == 5, f"{len(every)} observations over the pages")
    for observation in every:
        ObservationModel.model_validate(observation.serialize())
    newest = search.sort("-date").limit(1).fetch()
    expect(newest[0]["effectiveDateTime"].startswith("2026-11-05"), "sort by -date")
    ranged = search.search(date__ge="2026-11-03").fetch_all()
    expect(len(ranged) == 3, f"{len(ranged)} observations on or after the 3rd")
    raw = search.include("Observation", "subject").limit(10).fetch_raw()
    Bundle.model_validate(raw.serialize() if hasattr(raw, "serialize") else raw)
    modes = [e["search"]["mode"] for e in raw["entry"]]
    expect(modes.count("include") == 1 and modes.count("match") == 5, f"modes {modes}")


@check("fhirpy: update, refresh and If-None-Match")
def update_and_refresh():
    patient = state["patient"]
    patient["gender"] = "other"
    patient.save()
    expect(patient["meta"]["versionId"] == "2", f"version {patient['meta']['versionId']}")
    patient.refresh()  # sends If-None-Match: the server answers 304 and nothing changes
    expect(patient["gender"] == "other", "refresh lost the update")


@check("fhirpy: conditional update (PUT Type?search)")
def conditional_update():
    identifier = f"c-{RUN}"
    search = client.resources("Patient").search(identifier=f"{SYSTEM}|{identifier}")
    created, was_created = search.update(
        client.resource("Patient", **patient_body(f"Cond{RUN}", "Ada", identifier))
    )
    expect(was_created, "the first conditional update should create")
    changed = client.resource("Patient", **patient_body(f"Cond{RUN}", "Ada", identifier))
    changed["gender"] = "male"
    updated, was_created = search.update(changed)
    expect(not was_created and updated.id == created.id, "the second should update the match")
    expect(updated["gender"] == "male", "not updated")


@check("fhirpy: patch")
def patch():
    patient = state["patient"]
    patched = client.patch("Patient", patient.id, birthDate="1991-05-06")
    expect(patched["birthDate"] == "1991-05-06", f"patched {patched}")
    expect(patched["name"][0]["family"] == f"Client{RUN}", "patch lost other elements")


@check("fhirpy: delete, then 410")
def delete():
    patient = client.resource("Patient", **patient_body(f"Gone{RUN}", "Del", f"d-{RUN}"))
    patient.save()
    patient.delete()
    try:
        client.reference("Patient", patient.id).to_resource()
        raise AssertionError("a deleted patient still reads")
    except ResourceNotFound:
        pass
    expect(
        client.resources("Patient").search(identifier=f"{SYSTEM}|d-{RUN}").count() == 0,
        "a deleted patient is still found",
    )


@check("fhirpy: several matches are refused where one is required")
def several_matches():
    for given in ("One", "Two"):
        client.resource("Patient", **patient_body(f"Twin{RUN}", given, f"t-{RUN}")).save()
    try:
        client.resources("Patient").search(identifier=f"{SYSTEM}|t-{RUN}").get()
        raise AssertionError("get() of two returned one")
    except MultipleResourcesFound:
        pass


def fhirclient_server_for():
    server = fhirclient_server.FHIRServer(None, base_uri=BASE + "/")
    server.session.headers.update({"Authorization": f"Bearer {TOKEN}"})
    return server


@check("fhirclient: capability, read, search and create")
def fhirclient_checks():
    server = fhirclient_server_for()
    server.get_capability()
    expect(server.capabilityStatement.fhirVersion == "4.0.1", "capability statement")
    patient = FcPatient.read(state["patient"].id, server)
    expect(patient.name[0].family == f"Client{RUN}", "read")
    found = FcPatient.where(struct={"identifier": f"{SYSTEM}|p-{RUN}"}).perform_resources(server)
    expect([p.id for p in found] == [patient.id], f"search found {[p.id for p in found]}")
    observation = FcObservation(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{patient.id}"},
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        }
    )
    created = observation.create(server)
    expect(created and created.get("id"), f"create answered {created}")
    weights = FcObservation.where(
        struct={"subject": f"Patient/{patient.id}", "code": "http://loinc.org|29463-7"}
    ).perform_resources(server)
    expect(len(weights) == 1 and weights[0].valueQuantity.value == 71.5, "the weight")


@check("fhir.resources: a model built in Python is accepted as sent")
def model_round_trip():
    model = PatientModel.model_validate(
        {"resourceType": "Patient", **patient_body(f"Model{RUN}", "Mo", f"m-{RUN}")}
    )
    answer = requests.post(
        f"{BASE}/Patient",
        data=model.model_dump_json(),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
        },
        timeout=10,
    )
    expect(answer.status_code == 201, f"{answer.status_code} {answer.text}")
    stored = PatientModel.model_validate(answer.json())
    expect(stored.birthDate == model.birthDate and stored.name[0].family == f"Model{RUN}", "stored")


@check("Bulk Data: $export kick-off, polling and NDJSON through the gateway")
def bulk_export():
    import json
    import time

    auth = {"Authorization": f"Bearer {TOKEN}"}
    kicked = requests.get(
        f"{BASE}/Patient/$export?_type=Patient",
        headers={**auth, "Accept": "application/fhir+json", "Prefer": "respond-async"},
        timeout=10,
    )
    expect(kicked.status_code == 202, f"kick-off {kicked.status_code} {kicked.text}")
    status = kicked.headers["Content-Location"]
    for _ in range(200):
        polled = requests.get(status, headers={**auth, "Accept": "application/json"}, timeout=10)
        if polled.status_code != 202:
            break
        time.sleep(0.1)
    expect(polled.status_code == 200, f"status {polled.status_code} {polled.text}")
    manifest = polled.json()
    ids = set()
    for output in manifest["output"]:
        got = requests.get(
            output["url"], headers={**auth, "Accept": "application/fhir+ndjson"}, timeout=10
        )
        expect(got.status_code == 200, f"file {got.status_code}")
        for line in got.text.splitlines():
            patient = PatientModel.model_validate(json.loads(line))
            ids.add(patient.id)
    expect(state["patient"].id in ids, "the registered patient is in the export")
    gone = requests.delete(status, headers=auth, timeout=10)
    expect(gone.status_code == 202, f"delete {gone.status_code}")


print(f"{len(FAILURES)} failed" if FAILURES else "all passed", flush=True)
sys.exit(min(len(FAILURES), 100))
