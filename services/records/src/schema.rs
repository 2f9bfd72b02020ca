//! Diesel table definitions (kept by hand beside `migrations/`).

diesel::table! {
    resource_versions (resource_type, resource_id, version) {
        resource_type -> Text,
        resource_id -> Text,
        version -> Int8,
        body -> Bytea,
        deleted -> Bool,
        last_updated -> Timestamptz,
        patient_ref -> Nullable<Text>,
        sealed_by -> Int2,
    }
}

diesel::table! {
    resources (resource_type, resource_id) {
        resource_type -> Text,
        resource_id -> Text,
        version -> Int8,
        patient_ref -> Nullable<Text>,
        confidentiality -> Nullable<Text>,
        deleted -> Bool,
        last_updated -> Timestamptz,
    }
}

diesel::table! {
    search_index (resource_type, resource_id, param) {
        resource_type -> Text,
        resource_id -> Text,
        param -> Text,
        system -> Nullable<Text>,
        value -> Nullable<Text>,
        value_start -> Nullable<Timestamptz>,
        value_end -> Nullable<Timestamptz>,
        number -> Nullable<Float8>,
        element -> Nullable<Int4>,
    }
}

diesel::table! {
    compartments (patient_ref) {
        patient_ref -> Text,
        custodian -> Nullable<Text>,
    }
}

diesel::table! {
    patient_keys (patient_ref) {
        patient_ref -> Text,
        wrapped_key -> Nullable<Bytea>,
        created_at -> Timestamptz,
        erased_at -> Nullable<Timestamptz>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    resource_versions,
    resources,
    search_index,
    compartments,
    patient_keys
);

diesel::table! {
    membership_containers (container_ref) {
        container_ref -> Text,
        version -> Int8,
        known -> Bool,
    }
}

diesel::table! {
    memberships (container_ref, member_ref) {
        container_ref -> Text,
        member_ref -> Text,
        period_start -> Nullable<Timestamptz>,
        period_end -> Nullable<Timestamptz>,
        organization_ref -> Nullable<Text>,
        source -> Text,
    }
}
