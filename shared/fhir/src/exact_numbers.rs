//! JSON numbers kept as written through a `serde_json::Value`, for what must edit a resource as
//! a tree (PATCH): serde_json (without `arbitrary_precision`, which would change number
//! handling in every crate of the workspace build) reads every decimal as an f64, so `60.50`
//! would come back as `60.5` and `0.12345678901234567890` as `0.12345678901234568`, where FHIR
//! decimals keep their precision as written (R4 datatypes.html#decimal).
//!
//! [`parse`] turns each number literal into a string holding [`MARK`] and the literal, and
//! [`to_string`] turns such strings back into the literal. U+FDD0 is a Unicode noncharacter,
//! reserved for a process's internal use: a text that holds it (raw or escaped) is refused
//! rather than guessed at.

use serde_json::Value;

/// What a marked number's string begins with.
pub const MARK: char = '\u{FDD0}';

#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    #[error("it holds U+FDD0, a Unicode noncharacter, which is not accepted here")]
    Marked,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Whether `text` holds [`MARK`], raw or as a JSON escape (any case of `\ufdd0`).
fn holds_mark(text: &str) -> bool {
    text.contains(MARK) || text.to_ascii_lowercase().contains("\\ufdd0")
}

/// `text` with every number literal outside strings turned into a marked string.
fn mark(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // A string, up to its closing quote.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                out.push_str(text.get(copied..start).unwrap_or_default());
                out.push('"');
                out.push(MARK);
                out.push_str(text.get(start..i).unwrap_or_default());
                out.push('"');
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// Parses JSON with its numbers marked (kept as written).
pub fn parse(text: &[u8]) -> Result<Value, ExactError> {
    let text = std::str::from_utf8(text).map_err(|_| {
        serde_json::from_slice::<Value>(text)
            .err()
            .map(ExactError::Json)
            .unwrap_or(ExactError::Marked)
    })?;
    if holds_mark(text) {
        return Err(ExactError::Marked);
    }
    // Invalid JSON is reported as serde_json reports it on the text as sent.
    serde_json::from_str::<Value>(text)?;
    Ok(serde_json::from_str(&mark(text))?)
}

/// The literal of a marked number.
pub fn number(value: &Value) -> Option<&str> {
    value
        .as_str()
        .and_then(|s| s.strip_prefix(MARK))
        .filter(|s| is_literal(s))
}

fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Serialises a value whose numbers are marked, each number as written.
pub fn to_string(value: &Value) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string(value)?;
    if !text.contains(MARK) {
        return Ok(text);
    }
    // serde_json writes U+FDD0 as is (it escapes only quotes, backslashes and controls), and a
    // literal needs no escape: a marked number is `"` MARK literal `"` in the text.
    let unmarked = crate::json_text::replace_strings(&text, |quoted| {
        let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
        inner
            .strip_prefix(MARK)
            .filter(|s| is_literal(s))
            .map(str::to_string)
    });
    Ok(unmarked.unwrap_or(text))
}

/// A number literal as (negative, significant digits, exponent): `1.50`, `1.5` and `15e-1`
/// are the same number. None for what is not a literal.
fn decimal(literal: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, literal),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            rest.get(..at)?,
            rest.get(at + 1..)?
                .trim_start_matches('+')
                .parse::<i64>()
                .ok()?,
        ),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exponent = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let trimmed = digits.trim_start_matches('0');
    let significant = trimmed.trim_end_matches('0');
    exponent = exponent.checked_add(i64::try_from(trimmed.len() - significant.len()).ok()?)?;
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, significant.to_string(), exponent))
}

/// Whether two values are equal as a JSON Patch `test` compares them (RFC 6902 4.6: numbers
/// by value), marked numbers included.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => match (decimal(x), decimal(y)) {
                (Some(x), Some(y)) => x == y,
                _ => x == y,
            },
            _ => a == b,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_back_as_written() {
        let text = r#"{"a":60.50,"b":[1,-0.0,1E+2,0.12345678901234567890123],"c":"1.50 \"x\" 7","d":{"e":107,"f":true,"g":null}}"#;
        let value = parse(text.as_bytes()).unwrap();
        assert_eq!(number(&value["a"]), Some("60.50"));
        assert_eq!(value["c"], "1.50 \"x\" 7");
        assert_eq!(to_string(&value).unwrap(), text);
        // Plain numbers (not marked) are written as serde_json writes them.
        let mixed = serde_json::json!({"n": 1.5, "m": value["a"].clone()});
        assert_eq!(to_string(&mixed).unwrap(), r#"{"m":60.50,"n":1.5}"#);
    }

    #[test]
    fn texts_holding_the_mark_are_refused() {
        for text in [
            "{\"a\":\"\u{FDD0}1\"}",
            r#"{"a":"\uFDD01"}"#,
            r#"{"a":"\ufdd0"}"#,
        ] {
            assert!(
                matches!(parse(text.as_bytes()), Err(ExactError::Marked)),
                "{text}"
            );
        }
        assert!(matches!(parse(b"{\"a\":01x}"), Err(ExactError::Json(_))));
        assert!(matches!(parse(b"[1,"), Err(ExactError::Json(_))));
    }

    #[test]
    fn numbers_compare_by_value() {
        let v = parse(br#"[1.50, 1.5, 15e-1, 150E-2, 1.05, 0, -0.00, 100, 1e2, "1.5"]"#).unwrap();
        let at = |i: usize| &v[i];
        for (a, b) in [(0, 1), (1, 2), (2, 3), (5, 6), (7, 8)] {
            assert!(same(at(a), at(b)), "{a} {b}");
        }
        for (a, b) in [(0, 4), (1, 9), (7, 0)] {
            assert!(!same(at(a), at(b)), "{a} {b}");
        }
        let x = parse(br#"{"q":{"value":1.50,"unit":"kg"}}"#).unwrap();
        let y = parse(br#"{"q":{"unit":"kg","value":1.5}}"#).unwrap();
        assert!(same(&x, &y));
    }
}
