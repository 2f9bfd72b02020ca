//! Diesel table definitions (kept by hand in step with `migrations/`).

diesel::table! {
    consents (id) {
        id -> Uuid,
        patient -> Text,
        status -> Text,
        version_id -> Int8,
        last_updated -> Timestamptz,
        deleted -> Bool,
        resource -> Jsonb,
        actors -> Array<Text>,
    }
}

diesel::table! {
    consent_history (id, version_id) {
        id -> Uuid,
        version_id -> Int8,
        last_updated -> Timestamptz,
        deleted -> Bool,
        resource -> Jsonb,
    }
}

diesel::joinable!(consent_history -> consents (id));
diesel::allow_tables_to_appear_in_same_query!(consents, consent_history);
