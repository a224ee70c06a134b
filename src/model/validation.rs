//! Field-level validation errors, each naming the JSON pointer of the bad field.

use serde::Serialize;

/// One rejected field: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, or the query parameter name prefixed by `?`.
    pub pointer: String,
    /// Lowercase, no final period; user input in backticks.
    pub detail: String,
}

/// Every problem found in one input, so a client can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors {
    /// The individual field errors, in the order they were found.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// An empty collection to push into while validating.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection holding one error.
    pub fn single(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(pointer, detail);
        errors
    }

    /// Records one problem.
    pub fn push(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    /// Runs a fallible conversion, recording its error under `pointer` and returning `None` on failure.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        pointer: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        self.check_at(|| pointer.into(), result)
    }

    /// [`ValidationErrors::check`] with the pointer written only on failure (for hot paths:
    /// a batch of valid checks formats no pointers).
    pub fn check_at<T, E: std::fmt::Display>(
        &mut self,
        pointer: impl FnOnce() -> String,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(pointer(), error.to_string());
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else the collected errors.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    fn summary(&self) -> String {
        match self.errors.as_slice() {
            [] => "invalid input".to_owned(),
            [one] => format!("{}: {}", one.pointer, one.detail),
            [first, rest @ ..] => format!(
                "{}: {} (and {} more)",
                first.pointer,
                first.detail,
                rest.len()
            ),
        }
    }
}
