//! Diesel table definitions, matching `migrations/`.

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        organization_id -> Nullable<Uuid>,
        department -> Nullable<Text>,
        practitioner_ref -> Nullable<Text>,
        patient_ref -> Nullable<Text>,
        suspended -> Bool,
        suspended_reason -> Nullable<Text>,
        suspended_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_clients (client_id) {
        client_id -> Text,
        secret_hash -> Text,
        name -> Text,
        role -> Text,
        organization_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_key_pem -> Text,
        public_jwk -> Jsonb,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    login_lockouts (principal_kind, principal_id) {
        principal_kind -> Text,
        principal_id -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        locked_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(oauth_clients -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    users,
    oauth_clients,
    signing_keys,
    revoked_tokens,
    login_lockouts
);
