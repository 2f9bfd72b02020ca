use super::Invalid;

/// A password of 8 to 256 characters. It never prints: `Debug` shows a placeholder, and it has
/// no `Display`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let length = raw.chars().count();
        if length < 8 {
            return Err(Invalid(
                "password must be at least 8 characters long".into(),
            ));
        }
        if length > 256 {
            return Err(Invalid(
                "password must be at most 256 characters long".into(),
            ));
        }
        if raw.trim().is_empty() {
            return Err(Invalid("password must not be blank".into()));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(257)).is_err());
        assert!(Password::parse("         ".into()).is_err());
        assert!(Password::parse("correct horse".into()).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Password::parse("correct horse".into()).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
