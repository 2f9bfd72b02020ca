//! The witness's PostgreSQL state: the latest cosigned checkpoint per log, advanced by
//! compare-and-swap, and its generated key.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{witness_key, witnessed_logs};

/// What the witness holds for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
}

pub async fn witnessed(
    conn: &mut AsyncPgConnection,
    origin: &str,
) -> QueryResult<Option<Witnessed>> {
    witnessed_logs::table
        .find(origin)
        .select((witnessed_logs::tree_size, witnessed_logs::root_hash))
        .first::<(i64, Vec<u8>)>(conn)
        .await
        .optional()
        .map(|row| {
            row.map(|(tree_size, root_hash)| Witnessed {
                tree_size,
                root_hash,
            })
        })
}

/// Moves the log's record from `from` (None: no record yet) to the new checkpoint, only if
/// the record is still exactly `from`: of two concurrent requests from the same state, one
/// advances and the other sees `false` (and answers 409), so the record never rolls back.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    origin: &str,
    from: Option<&Witnessed>,
    to: &Witnessed,
    note: &str,
) -> QueryResult<bool> {
    let rows = match from {
        None => {
            diesel::insert_into(witnessed_logs::table)
                .values((
                    witnessed_logs::origin.eq(origin),
                    witnessed_logs::tree_size.eq(to.tree_size),
                    witnessed_logs::root_hash.eq(&to.root_hash),
                    witnessed_logs::note.eq(note),
                ))
                .on_conflict(witnessed_logs::origin)
                .do_nothing()
                .execute(conn)
                .await?
        }
        Some(from) => {
            diesel::update(
                witnessed_logs::table
                    .filter(witnessed_logs::origin.eq(origin))
                    .filter(witnessed_logs::tree_size.eq(from.tree_size))
                    .filter(witnessed_logs::root_hash.eq(&from.root_hash)),
            )
            .set((
                witnessed_logs::tree_size.eq(to.tree_size),
                witnessed_logs::root_hash.eq(&to.root_hash),
                witnessed_logs::note.eq(note),
                witnessed_logs::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?
        }
    };
    Ok(rows == 1)
}

/// The latest cosigned checkpoint of a log, with this witness's cosignature.
pub async fn cosigned_note(
    conn: &mut AsyncPgConnection,
    origin: &str,
) -> QueryResult<Option<String>> {
    witnessed_logs::table
        .find(origin)
        .select(witnessed_logs::note)
        .first(conn)
        .await
        .optional()
}

/// The witness's generated key: created by `generate` on first start, named `name`; a key
/// stored under another name is refused (a witness's name is part of its identity).
pub async fn load_or_create_key<E: From<diesel::result::Error>>(
    conn: &mut AsyncPgConnection,
    name: &str,
    generate: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Result<(String, Vec<u8>), E> {
    let existing: Option<(String, Vec<u8>)> = witness_key::table
        .select((witness_key::name, witness_key::private_key))
        .first(conn)
        .await
        .optional()?;
    if let Some(key) = existing {
        return Ok(key);
    }
    let private_key = generate()?;
    diesel::insert_into(witness_key::table)
        .values((
            witness_key::id.eq(1i16),
            witness_key::name.eq(name),
            witness_key::private_key.eq(&private_key),
        ))
        .on_conflict(witness_key::id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(witness_key::table
        .select((witness_key::name, witness_key::private_key))
        .first(conn)
        .await?)
}
