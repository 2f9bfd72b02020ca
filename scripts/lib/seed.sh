# shellcheck shell=bash
# Seeding a running suite through its gateway, as a client would. Sourced by scripts/bench.sh and
# scripts/api-check.sh; not meant to be run on its own.
#
# Inputs: GW (the gateway's URL), ADMIN_PASSWORD, ADMIN_USERNAME (admin).

# call METHOD PATH TOKEN [JSON_BODY]: sets STATUS and BODY.
call() {
  local method="$1" path="$2" token="$3" data="${4:-}" out
  local -a args=(-sS -X "$method" -w '\n%{http_code}' --max-time 30 -H 'Accept: application/json')
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  if [ -n "$data" ]; then
    local ctype='application/json'
    case "$path" in /fhir/*) ctype='application/fhir+json' ;; esac
    args+=(-H "Content-Type: $ctype" --data-binary "$data")
  fi
  out="$(curl "${args[@]}" "$GW$path")"
  STATUS="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
}

# expect WHAT CODE...: exits with BODY unless STATUS is one of CODE.
expect() {
  local what="$1" code
  shift
  for code in "$@"; do [ "$STATUS" = "$code" ] && return 0; done
  echo "error: $what: HTTP $STATUS (expected $*): $BODY" >&2
  exit 1
}

# token_for USER PASSWORD: prints an access token (password grant).
token_for() {
  local user="$1" password="$2" out
  out="$(curl -sS --max-time 30 -X POST "$GW/auth/token" \
    --data-urlencode grant_type=password --data-urlencode "username=$user" --data-urlencode "password=$password")"
  jq -er .access_token <<<"$out" 2>/dev/null || { echo "error: no token for $user: $out" >&2; exit 1; }
}

# seed_clinic LABEL ORGANISATION_NAME: an organisation, its practitioner `LABEL-practitioner`
# (department cardiology), a patient user `LABEL-patient` with her Patient resource, and her
# Consent permitting the organisation for TREAT. Sets ADMIN_TOKEN, ORG_REF, PRACT_TOKEN,
# PATIENT_REF, PATIENT_ID and PATIENT_TOKEN.
seed_clinic() {
  local label="$1" organisation="$2" pract_password patient_password patient_json token
  ADMIN_TOKEN="$(token_for "${ADMIN_USERNAME:-admin}" "$ADMIN_PASSWORD")"

  call POST /auth/admin/organizations "$ADMIN_TOKEN" "$(jq -nc --arg n "$organisation" '{name: $n}')"
  expect "create organisation" 200 201
  ORG_REF="$(jq -r '.reference // ("Organization/" + .id)' <<<"$BODY")"

  pract_password="$(openssl rand -hex 12)"
  call POST /auth/admin/users "$ADMIN_TOKEN" "$(jq -nc --arg u "$label-practitioner" --arg p "$pract_password" --arg o "$ORG_REF" \
    '{username: $u, password: $p, role: "practitioner", organization: $o, department: "cardiology"}')"
  expect "create practitioner user" 200 201

  patient_password="$(openssl rand -hex 12)"
  call POST /auth/admin/users "$ADMIN_TOKEN" "$(jq -nc --arg u "$label-patient" --arg p "$patient_password" \
    '{username: $u, password: $p, role: "patient"}')"
  expect "create patient user" 200 201
  PATIENT_REF="$(jq -r '.patient // empty' <<<"$BODY")"
  [ -n "$PATIENT_REF" ] || { echo "error: the patient user has no patient reference: $BODY" >&2; exit 1; }
  PATIENT_ID="${PATIENT_REF#Patient/}"

  PATIENT_TOKEN="$(token_for "$label-patient" "$patient_password")"
  PRACT_TOKEN="$(token_for "$label-practitioner" "$pract_password")"

  patient_json="$(jq -nc --arg id "$PATIENT_ID" --arg family "${label^}" '{
    resourceType: "Patient", id: $id, active: true,
    name: [{use: "official", family: $family, given: ["Pat"]}],
    gender: "female", birthDate: "1980-04-01"}')"
  # The practitioner registers the patient (as the demo data set does); should records refuse
  # that, the administrator, then the patient themself.
  for token in "$PRACT_TOKEN" "$ADMIN_TOKEN" "$PATIENT_TOKEN"; do
    call PUT "/fhir/Patient/$PATIENT_ID" "$token" "$patient_json"
    [[ "$STATUS" == 2* ]] && break
  done
  expect "PUT Patient/$PATIENT_ID" 200 201

  call POST /fhir/Consent "$PATIENT_TOKEN" "$(jq -nc --arg patient "$PATIENT_REF" --arg org "$ORG_REF" '{
    resourceType: "Consent", status: "active",
    scope: {coding: [{system: "http://terminology.hl7.org/CodeSystem/consentscope", code: "patient-privacy"}]},
    category: [{coding: [{system: "http://loinc.org", code: "59284-0"}]}],
    patient: {reference: $patient},
    dateTime: "2026-01-01T00:00:00Z",
    policyRule: {coding: [{system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTIN"}]},
    provision: {
      type: "permit",
      period: {start: "2020-01-01", end: "2099-12-31"},
      actor: [{role: {coding: [{system: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", code: "IRCP"}]},
               reference: {reference: $org}}],
      purpose: [{system: "http://terminology.hl7.org/CodeSystem/v3-ActReason", code: "TREAT"}]
    }}')"
  expect "POST Consent as the patient" 200 201
}
