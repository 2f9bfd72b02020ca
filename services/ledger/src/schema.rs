//! Diesel table definitions (mirrors `migrations/`).

diesel::table! {
    leaves (idx) {
        idx -> Int8,
        event_id -> Uuid,
        leaf_hash -> Bytea,
        payload -> Text,
        patient_ref -> Nullable<Text>,
        actor_id -> Text,
        time -> Timestamptz,
        action -> Text,
        outcome -> Text,
        actor_practitioner -> Nullable<Text>,
    }
}

diesel::table! {
    checkpoints (tree_size) {
        tree_size -> Int8,
        root_hash -> Bytea,
        note -> Text,
        signed_at -> Timestamptz,
    }
}

diesel::table! {
    signing_key (id) {
        id -> Int2,
        private_key -> Bytea,
        public_key -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    signing_keys (verifier_key) {
        verifier_key -> Text,
        first_used_at -> Timestamptz,
    }
}

diesel::table! {
    witness_state (witness) {
        witness -> Text,
        tree_size -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    cosignatures (tree_size, witness) {
        tree_size -> Int8,
        witness -> Text,
        line -> Text,
        cosigned_at -> Timestamptz,
    }
}

diesel::joinable!(cosignatures -> checkpoints (tree_size));

diesel::table! {
    tiles (level, idx) {
        level -> Int2,
        idx -> Int8,
        hashes -> Bytea,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    leaves,
    checkpoints,
    signing_key,
    signing_keys,
    witness_state,
    cosignatures,
    tiles
);
