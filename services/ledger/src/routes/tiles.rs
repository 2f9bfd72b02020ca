//! `GET /ledger/tile/<L>/<N>[.p/<W>]` and `GET /ledger/tile/entries/<N>[.p/<W>]`: the tree as
//! C2SP tlog-tiles, read-only, so standard tile clients can check the log themselves.
//!
//! Hash tiles hold only hashes (no patient data) and are public. Entry bundles hold the events,
//! which name patients: they need a token, and a caller gets a bundle only when they may see
//! every entry in it (as `GET /ledger/entries/{index}` decides for one).
//!
//! Only tiles within the tree of the latest signed checkpoint are served, so every tile can be
//! checked against a signed root. Full tiles never change and are cacheable for good.

use actix_web::{http::header, web, HttpResponse};
use custodian_access::Caller;

use crate::{
    domain::Viewer,
    error::LedgerError,
    service::LedgerService,
    tile_storage,
    tiles::{hashes_to_bytes, tile_width_at, TileId, TilePath, TILE_WIDTH},
};

/// The width asked (`W` of a partial tile, 256 for a full one), checked to exist at the
/// latest checkpoint's size.
fn served_width(path: &TilePath, available: u64) -> Result<u64, LedgerError> {
    let width = path.width.unwrap_or(TILE_WIDTH);
    if available < width {
        return Err(LedgerError::NotFound(format!(
            "tile {} is not in the signed tree",
            path.encode()
        )));
    }
    Ok(width)
}

fn tile_response(bytes: Vec<u8>, full: bool) -> HttpResponse {
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, cache))
        .body(bytes)
}

fn parse(raw: &str) -> Result<TilePath, LedgerError> {
    TilePath::parse(raw).map_err(|e| LedgerError::NotFound(e.to_string()))
}

/// A hash tile: the concatenated 32-byte hashes of `W` (or 256) tree nodes of height `8·L`.
#[utoipa::path(
    get,
    path = "/ledger/tile/{tile}", operation_id = "hash_tile", tag = "ledger",
    params(("tile" = String, Path, description = "`<L>/<N>[.p/<W>]`, N in 3-digit groups (`x001/x234/067`)")),
    responses(
        (status = 200, description = "the tile's hashes", content_type = "application/octet-stream"),
        (status = 404, description = "No such entry, tile or tree size (`error`: not-found)", body = crate::routes::ErrorBody),
    )
)]
pub async fn hashes(
    ledger: web::Data<LedgerService>,
    path: web::Path<String>,
) -> Result<HttpResponse, LedgerError> {
    let path = parse(&path)?;
    let Some(level) = path.level else {
        return Err(LedgerError::NotFound("not a hash tile".into()));
    };
    let id = TileId {
        level,
        index: path.index,
    };
    let signed = ledger.latest().tree_size;
    let width = served_width(&path, tile_width_at(id, signed))?;
    let tile = ledger
        .tile(id)
        .await?
        .filter(|t| t.len() as u64 >= width)
        .ok_or_else(|| LedgerError::unexpected(format!("tile {id:?} is missing")))?;
    Ok(tile_response(
        hashes_to_bytes(&tile[..width as usize]),
        path.width.is_none(),
    ))
}

/// An entry bundle: the entries `[256·N, 256·N + W)`, each as a 2-byte big-endian length and
/// the event JSON exactly as logged.
#[utoipa::path(
    get,
    path = "/ledger/tile/entries/{tile}", operation_id = "entry_bundle_tile", tag = "ledger",
    params(("tile" = String, Path, description = "`<N>[.p/<W>]`, N in 3-digit groups")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "the entry bundle", content_type = "application/octet-stream"),
        (status = 403, description = "Not the caller's to see (`error`: forbidden)", body = crate::routes::ErrorBody),
        (status = 404, description = "No such entry, tile or tree size (`error`: not-found)", body = crate::routes::ErrorBody),
    )
)]
pub async fn entries(
    caller: Caller,
    ledger: web::Data<LedgerService>,
    path: web::Path<String>,
) -> Result<HttpResponse, LedgerError> {
    let viewer = Viewer::of(&caller).map_err(|d| LedgerError::Forbidden(d.explanation))?;
    let path = parse(&format!("entries/{path}"))?;
    let id = TileId {
        level: 0,
        index: path.index,
    };
    let width = served_width(&path, tile_width_at(id, ledger.latest().tree_size))?;
    let from = i64::try_from(path.index * TILE_WIDTH)
        .map_err(|_| LedgerError::NotFound("no such tile".into()))?;
    let mut conn = ledger.pool().get().await?;
    let rows = tile_storage::leaf_range(&mut conn, from, from + width as i64).await?;
    drop(conn);
    if rows.len() as u64 != width {
        return Err(LedgerError::unexpected(format!(
            "entries of tile {} are missing",
            path.encode()
        )));
    }
    let mut body = Vec::new();
    for (_, payload, patient_ref, actor_id) in &rows {
        if !viewer.can_see(patient_ref.as_deref(), actor_id) {
            return Err(LedgerError::Forbidden(
                "this bundle holds entries that are not yours to see".into(),
            ));
        }
        let len = u16::try_from(payload.len())
            .map_err(|_| LedgerError::unexpected("an entry is longer than 65535 bytes"))?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(payload.as_bytes());
    }
    Ok(tile_response(body, path.width.is_none()))
}
