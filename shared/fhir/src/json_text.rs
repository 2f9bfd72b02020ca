//! Editing the string literals of a JSON text in one pass, without parsing it into a tree
//! (which would re-render its numbers: see [`crate::exact_numbers`]).

/// `text` with each string literal (quotes included, escapes as written) for which `replace`
/// gives a replacement swapped for it, verbatim; `None` when nothing was replaced. Outside
/// strings JSON has no quotes, so every `"` that is not escaped opens or closes one.
pub fn replace_strings(
    text: &str,
    mut replace: impl FnMut(&str) -> Option<String>,
) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        let end = (i + 1).min(bytes.len());
        if let Some(with) = text.get(start..end).and_then(&mut replace) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 64));
            o.push_str(text.get(copied..start).unwrap_or_default());
            o.push_str(&with);
            copied = end;
        }
        i = end;
    }
    let mut o = out?;
    o.push_str(text.get(copied..).unwrap_or_default());
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_strings_only_and_keeps_the_rest_verbatim() {
        let text = r#"{"a":"x","b":["x\"y","x"],"c":1.50}"#;
        let out = replace_strings(text, |s| (s == r#""x""#).then(|| r#""z""#.to_string()));
        assert_eq!(
            out.as_deref(),
            Some(r#"{"a":"z","b":["x\"y","z"],"c":1.50}"#)
        );
        assert_eq!(replace_strings(text, |_| None), None);
        assert_eq!(
            replace_strings(r#""unterminated"#, |_| Some("q".into())).as_deref(),
            Some("q")
        );
    }
}
