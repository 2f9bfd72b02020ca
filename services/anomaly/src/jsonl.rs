//! Lines of the JSON-lines files the command line reads (events, labels, scores, care facts).
//! Files come from other systems: a byte-order mark (Windows tools write one) and blank lines
//! are not data.

/// The JSON text of one line, or `None` for a blank one.
pub fn content(line: &str) -> Option<&str> {
    let text = line.trim_start_matches('\u{feff}');
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::content;

    #[test]
    fn a_byte_order_mark_and_blank_lines_are_not_data() {
        assert_eq!(content("\u{feff}{\"a\":1}\r\n"), Some("{\"a\":1}\r\n"));
        assert_eq!(content("{\"a\":1}"), Some("{\"a\":1}"));
        assert_eq!(content("  \r\n"), None);
        assert_eq!(content("\u{feff}"), None);
    }
}
