//! A page of a search: its rows (one more read to know whether another page follows), its
//! total when it is free or asked for, its `next`/`previous` links, and the searchset Bundle.

use custodian_fhir::{
    bundle::{raw, Bundle, Entry, Link},
    elements::{self, Summary},
    exact_numbers, FhirError,
};
use diesel::result::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::query::{cursor_of, Cursor, Match, SearchQuery, TotalMode};

/// Where the `next` and `previous` links of a page lead (`_cursor` or `_offset` values).
#[derive(Debug, Default)]
pub struct Paging {
    pub next: Option<(&'static str, String)>,
    pub previous: Option<(&'static str, String)>,
}

/// One page of matches the caller may see (once the query is restricted to them).
#[derive(Debug)]
pub struct Page {
    /// In the search's order.
    pub rows: Vec<Match>,
    /// `Bundle.total`, when given (see [`TotalMode`]).
    pub total: Option<usize>,
    pub paging: Paging,
}

/// Reads the page `query` asks for.
pub async fn read(conn: &mut AsyncPgConnection, query: &SearchQuery) -> QueryResult<Page> {
    // One more than the page, to know whether there is a next one.
    let limit = if query.count == 0 { 0 } else { query.count + 1 };
    let mut rows = query.page(conn, query.offset, limit).await?;
    let more = rows.len() > query.count;
    if more && query.backward() {
        // Read backwards: the extra row is the earliest.
        rows.remove(0);
    }
    rows.truncate(query.count);
    // A first page with nothing after it is every match: its length is the total.
    let whole = (query.offset == 0 && query.cursor.is_none() && !more).then_some(rows.len());
    let total = match query.total_mode {
        // `_count=0` and `_summary=count` are the count, whatever `_total` says.
        _ if query.count == 0 => Some(query.total(conn).await?),
        TotalMode::None => None,
        TotalMode::WhenCheap => whole,
        TotalMode::Accurate | TotalMode::Estimate => match whole {
            Some(n) => Some(n),
            None => Some(query.total(conn).await?),
        },
    };
    let paging = paging(conn, query, &rows, more).await?;
    Ok(Page {
        rows,
        total,
        paging,
    })
}

/// The links of `page` (`more`: the query found a row beyond it, in its direction).
///
/// Pages of the default order are keyset pages: `next` starts after the page's last row,
/// `previous` ends before its first (a `before|` cursor, read backwards), so each is exactly
/// the rows next to this page at the time it is followed. Each is given only when a row the
/// caller may see lies that way: known from `more` in the direction the page was read, and
/// asked of the database in the other. A page with no rows (what it followed was updated or
/// deleted since) has nothing to start from: only its `self` link. Other orders page by
/// `_offset`.
async fn paging(
    conn: &mut AsyncPgConnection,
    query: &SearchQuery,
    page: &[Match],
    more: bool,
) -> QueryResult<Paging> {
    let mut paging = Paging::default();
    if query.count == 0 {
        return Ok(paging);
    }
    // `_offset` (given with the default order too, then followed by cursors).
    if query.offset > 0 {
        let previous = query.offset.saturating_sub(query.count);
        paging.previous = Some(("_offset", previous.to_string()));
    }
    if !query.keyset() {
        if more {
            paging.next = Some(("_offset", (query.offset + query.count).to_string()));
        }
        return Ok(paging);
    }
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok(paging);
    };
    let backward = query.backward();
    let next = if backward {
        query
            .any_beyond(conn, last.last_updated, &last.resource_id, false)
            .await?
    } else {
        more
    };
    if next {
        paging.next = Some(("_cursor", cursor_of(last.last_updated, &last.resource_id)));
    }
    // A first page has nothing before; one reached by `_offset` has its link already.
    let previous = if backward {
        more
    } else if query.cursor.is_some() {
        query
            .any_beyond(conn, first.last_updated, &first.resource_id, true)
            .await?
    } else {
        false
    };
    if previous {
        let before = Cursor {
            last_updated: first.last_updated,
            id: first.resource_id.clone(),
            before: true,
        };
        paging.previous = Some(("_cursor", before.token()));
    }
    Ok(paging)
}

/// The subset `_summary` and `_elements` ask for, of every match (`_elements`) and of every
/// match and included resource (`_summary`).
fn shape(query: &SearchQuery, entries: &mut [Entry]) -> Result<(), FhirError> {
    let summary = query
        .summary
        .filter(|s| !matches!(s, Summary::False | Summary::Count));
    if summary.is_none() && query.elements.is_none() {
        return Ok(());
    }
    for entry in entries.iter_mut() {
        let mode = entry.search.as_ref().map(|s| s.mode);
        let elements = match mode {
            Some("match") => query.elements.as_deref(),
            Some("include") => None,
            _ => continue,
        };
        if summary.is_none() && elements.is_none() {
            continue;
        }
        let Some(resource) = &entry.resource else {
            continue;
        };
        // Numbers kept as stored: a subset must not turn 60.50 into 60.5.
        let value = exact_numbers::parse(resource.get().as_bytes())
            .map_err(|e| FhirError::Internal(e.to_string()))?;
        let subset = exact_numbers::to_string(&elements::subset(&value, summary, elements))
            .map_err(|e| FhirError::Internal(e.to_string()))?;
        entry.resource = raw(subset);
    }
    Ok(())
}

/// A link of the search at `{base}/{resource_type}`, with `extra` (`_offset` or `_cursor`).
fn link_url(
    base: &str,
    resource_type: &str,
    params: &[(String, String)],
    extra: Option<(&str, String)>,
) -> String {
    let mut params = params.to_vec();
    if let Some((k, v)) = extra {
        params.push((k.to_string(), v));
    }
    custodian_fhir::bundle::page_url(base, resource_type, &params)
}

/// The searchset Bundle of a page at `{base}/{resource_type}` (`base`: the FHIR base URL), its
/// entries shaped by `_summary`/`_elements`, its `self`/`next`/`previous` links, and an
/// `outcome` entry naming the parameters a lenient search ignored.
pub fn searchset(
    base: &str,
    resource_type: &str,
    query: &SearchQuery,
    total: Option<usize>,
    paging: Paging,
    mut entries: Vec<Entry>,
) -> Result<Bundle, FhirError> {
    shape(query, &mut entries)?;
    entries.extend(Entry::ignored_parameters(&query.ignored));
    let this = match (&query.cursor, query.offset) {
        (Some(cursor), _) => Some(("_cursor", cursor.token())),
        (None, 0) => None,
        (None, offset) => Some(("_offset", offset.to_string())),
    };
    let mut link = vec![Link {
        relation: "self",
        url: link_url(base, resource_type, &query.link_params, this),
    }];
    for (relation, to) in [("next", paging.next), ("previous", paging.previous)] {
        if let Some(to) = to {
            link.push(Link {
                relation,
                url: link_url(base, resource_type, &query.link_params, Some(to)),
            });
        }
    }
    let bundle = Bundle::new("searchset", total.unwrap_or(0), link, entries);
    Ok(if total.is_none() {
        bundle.without_total()
    } else {
        bundle
    })
}
