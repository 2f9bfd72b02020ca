//! Why a Consent was refused: every issue names the element (a FHIRPath-like path such as
//! `Consent.provision.provision[1].actor[0].reference`) and says what is wrong with it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One reason a Consent cannot be enforced exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentIssue {
    /// The element, e.g. `Consent.provision.actor[0].reference`.
    pub path: String,
    /// What is wrong, for the person who wrote the Consent.
    pub message: String,
}

impl ConsentIssue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConsentIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A Consent the engine refuses: it is malformed, or it says something the engine cannot
/// enforce exactly (it never enforces a wider rule instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// The Consent is refused; every issue names its element.
    #[error("the Consent cannot be enforced exactly: {}", join(.0))]
    Unenforceable(Vec<ConsentIssue>),
}

fn join(issues: &[ConsentIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConsentError {
    /// Every issue, in document order.
    pub fn issues(&self) -> &[ConsentIssue] {
        match self {
            ConsentError::Unenforceable(issues) => issues,
        }
    }

    pub fn into_issues(self) -> Vec<ConsentIssue> {
        match self {
            ConsentError::Unenforceable(issues) => issues,
        }
    }
}

/// Collects issues while a parse goes on, so one answer lists them all.
#[derive(Debug, Default)]
pub(crate) struct Issues(Vec<ConsentIssue>);

impl Issues {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConsentIssue::new(path, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConsentError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    pub(crate) fn into_error(self) -> ConsentError {
        ConsentError::Unenforceable(self.0)
    }
}
