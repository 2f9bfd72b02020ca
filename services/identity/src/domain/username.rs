use super::Invalid;

/// A login name: 3 to 64 characters of `a-z 0-9 . _ @ -`, stored lower-cased so `Alice` and
/// `alice` are the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim().to_lowercase();
        let length = name.chars().count();
        if !(3..=64).contains(&length) {
            return Err(Invalid("username must be 3 to 64 characters long".into()));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
        {
            return Err(Invalid(
                "username may only contain letters, digits and . _ @ -".into(),
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            Username::parse(" Alice.Smith@h1 ").unwrap().as_str(),
            "alice.smith@h1"
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse("bob smith").is_err());
        assert!(Username::parse("bob;drop").is_err());
        assert!(Username::parse("").is_err());
    }
}
