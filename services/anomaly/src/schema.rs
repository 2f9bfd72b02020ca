//! Diesel's view of the tables (kept in step with `migrations/` by hand; the API tests read and write every column).

diesel::table! {
    scored_events (event_id) {
        event_id -> Uuid,
        actor_id -> Text,
        patient_ref -> Nullable<Text>,
        time -> Timestamptz,
        action -> Text,
        outcome -> Text,
        score -> Float8,
        scored_at -> Timestamptz,
    }
}

diesel::table! {
    alerts (id) {
        id -> Uuid,
        event_id -> Uuid,
        user_id -> Text,
        score -> Float8,
        reasons -> Jsonb,
        event_time -> Timestamptz,
        created_at -> Timestamptz,
        suspended -> Bool,
    }
}

diesel::joinable!(alerts -> scored_events (event_id));
diesel::allow_tables_to_appear_in_same_query!(scored_events, alerts);
