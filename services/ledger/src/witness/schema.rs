//! Diesel table definitions of the witness database (mirrors `migrations-witness/`).

diesel::table! {
    witnessed_logs (origin) {
        origin -> Text,
        tree_size -> Int8,
        root_hash -> Bytea,
        note -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    witness_key (id) {
        id -> Int2,
        name -> Text,
        private_key -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(witnessed_logs, witness_key);
