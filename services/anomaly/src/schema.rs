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
        kind -> Text,
        incident_id -> Uuid,
        explanation -> Text,
        contributions -> Jsonb,
        patient_ref -> Nullable<Text>,
        status -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alert_feedback (id) {
        id -> Uuid,
        alert_id -> Uuid,
        action -> Text,
        author_id -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    relationships (id) {
        id -> Int8,
        origin -> Text,
        actor_kind -> Text,
        actor -> Text,
        organization -> Nullable<Text>,
        patient_ref -> Text,
        via -> Text,
        source -> Text,
        source_version -> Int8,
        start_time -> Timestamptz,
        end_time -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    patient_labels (patient_ref) {
        patient_ref -> Text,
        version -> Int8,
        labels -> Array<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        alert_id -> Uuid,
        payload -> Jsonb,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    alert_events (alert_id, event_id) {
        alert_id -> Uuid,
        event_id -> Uuid,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    detector_snapshots (name) {
        name -> Text,
        format -> Int4,
        state -> Bytea,
        events -> Int8,
        newest -> Nullable<Timestamptz>,
        taken_at -> Timestamptz,
    }
}

diesel::joinable!(alerts -> scored_events (event_id));
diesel::joinable!(alert_events -> alerts (alert_id));
diesel::joinable!(alert_feedback -> alerts (alert_id));
diesel::joinable!(webhook_deliveries -> alerts (alert_id));
diesel::allow_tables_to_appear_in_same_query!(
    scored_events,
    alert_events,
    alerts,
    alert_feedback,
    relationships,
    webhook_deliveries,
    detector_snapshots,
    patient_labels
);
