use super::Invalid;

/// Short free text (an organisation's or client's name, a department, a suspension reason):
/// trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    /// `what` names the field in the error message.
    pub fn parse(raw: &str, what: &str) -> Result<Self, Invalid> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(Invalid(format!("{what} must not be empty")));
        }
        if text.chars().count() > 200 {
            return Err(Invalid(format!(
                "{what} must be at most 200 characters long"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "{what} must not contain control characters"
            )));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(
            Label::parse("  Cardiology ", "department")
                .unwrap()
                .as_str(),
            "Cardiology"
        );
        assert!(Label::parse("   ", "department").is_err());
        assert!(Label::parse(&"x".repeat(201), "name").is_err());
        assert!(Label::parse("a\nb", "name").is_err());
        assert!(Label::parse("", "name").unwrap_err().0.contains("name"));
    }
}
