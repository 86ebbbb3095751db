//! The crate's one error type for user input.
//!
//! Public functions that take user input return [`Result`] with an [`Error`] whose message says
//! what was wrong and with which value. Programmer errors inside the maths (two internal arrays
//! of mismatched shape) `assert!` instead, naming the operation and both shapes.

use std::fmt;

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What was wrong with an input, said so that the caller can fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter outside its domain, e.g. `sigma = -1 (must be > 0)`.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the caller knows it (`sigma`, `u`, `weights[3]`).
        name: String,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: String,
    },
    /// A NaN or an infinity where a finite number is needed.
    #[error("non-finite value in {name} at index {index}: {value}")]
    NonFinite {
        /// Which input.
        name: String,
        /// Position of the first non-finite element.
        index: usize,
        /// The value itself (NaN, inf or -inf).
        value: f64,
    },
    /// Two inputs whose shapes do not fit together.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// The operation or input.
        what: String,
        /// The shape needed.
        expected: String,
        /// The shape given.
        got: String,
    },
    /// An empty input where at least one element is needed (zero samples, no data).
    #[error("{what} is empty: at least one {unit} is needed")]
    Empty {
        /// Which input.
        what: String,
        /// What one element is (sample, data point, category).
        unit: String,
    },
    /// Fewer than two values where a standard error is asked for (one value has no spread).
    #[error("a standard error needs at least 2 values, got {count}")]
    TooFewValues {
        /// How many values there were.
        count: usize,
    },
    /// A request larger than the machine can serve, refused before any work (see
    /// [`crate::base::budget`]).
    #[error("{what} needs {needs}, more than {limit}")]
    TooLarge {
        /// The request, in the user's terms (`--hidden 100000000`).
        what: String,
        /// What it needs (`at least 1.2 TiB of memory`).
        needs: String,
        /// The limit it exceeds.
        limit: String,
    },
    /// Standard output was closed by its reader (`vaelab eval … | head -1`): the command stops
    /// quietly (`main` exits with 141, the status of a process ended by SIGPIPE).
    #[error("standard output was closed by its reader")]
    OutputClosed,
    /// A lesson's claim that its own numbers do not bear out (see [`crate::base::claim`]).
    #[error("claim does not hold: {line}")]
    ClaimFailed {
        /// The claim's line, `✗ statement — figures and test`.
        line: String,
    },
    /// A numerical procedure that did not reach its stated tolerance.
    #[error("{what} did not converge: {detail}")]
    NoConvergence {
        /// Which procedure.
        what: String,
        /// Iterations used, residual reached, tolerance asked.
        detail: String,
    },
    /// Training or estimation produced a NaN or an infinity.
    #[error("non-finite {tensor} at epoch {epoch}, step {step}: {detail}")]
    Diverged {
        /// Epoch, counted from 1 as the metrics count epochs (a fit without epochs says 1).
        epoch: usize,
        /// Step within the epoch, counted from 1.
        step: usize,
        /// The tensor that first went non-finite (loss, d_mean_head.weight, ...).
        tensor: String,
        /// A short description (value, position).
        detail: String,
    },
    /// A file that could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A result that came out NaN or infinite from finite inputs (they are beyond what f64 holds).
    #[error("{quantity} = {value} is not a finite number: {hint}")]
    NotFinite {
        /// The reported quantity, as the output names it.
        quantity: String,
        /// The value (NaN, inf or -inf).
        value: f64,
        /// Which inputs to look at.
        hint: String,
    },
    /// A file or string that is not in the expected format.
    #[error("{what}: {detail}")]
    Format {
        /// Which file or field.
        what: String,
        /// What was expected and what was found.
        detail: String,
    },
}

impl Error {
    /// `InvalidParameter` from anything displayable.
    /// A number too long to read (`--beta 1e308` displays as 309 digits) is shown in scientific
    /// notation (`1e308`).
    pub fn invalid(name: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        let mut value = value.to_string();
        if value.len() > 24
            && let Ok(v) = value.parse::<f64>()
        {
            value = format!("{v:e}");
        }
        Error::InvalidParameter { name: name.into(), value, reason: reason.into() }
    }

    /// `Shape` from anything displayable.
    pub fn shape(what: impl Into<String>, expected: impl fmt::Display, got: impl fmt::Display) -> Self {
        Error::Shape { what: what.into(), expected: expected.to_string(), got: got.to_string() }
    }

    /// `Empty` for `what`, counted in `unit`s.
    pub fn empty(what: impl Into<String>, unit: impl Into<String>) -> Self {
        Error::Empty { what: what.into(), unit: unit.into() }
    }

    /// `Format` for a file or field.
    pub fn format(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Format { what: what.into(), detail: detail.into() }
    }

    /// `Io` for a path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// Checks that every element of `values` is finite; names the first one that is not.
pub fn ensure_finite<'a>(name: &str, values: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    for (index, &value) in values.into_iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::NonFinite { name: name.to_string(), index, value });
        }
    }
    Ok(())
}

/// Checks `value > 0` and finite, e.g. for a standard deviation.
pub fn ensure_positive(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "must be finite and > 0"))
    }
}

/// Checks `0 ≤ value ≤ 1`.
pub fn ensure_probability(name: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "must be a probability in [0, 1]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_value() {
        let e = ensure_positive("sigma", -0.5).unwrap_err();
        assert_eq!(e.to_string(), "invalid sigma = -0.5: must be finite and > 0");
        let e = ensure_finite("x", &[1.0, f64::NAN]).unwrap_err();
        assert_eq!(e.to_string(), "non-finite value in x at index 1: NaN");
        let e = ensure_probability("u", 1.5).unwrap_err();
        assert!(e.to_string().contains("u = 1.5"), "{e}");
        assert!(ensure_probability("u", 0.0).is_ok() && ensure_probability("u", 1.0).is_ok());
    }

    #[test]
    fn long_numbers_are_shown_in_scientific_notation() {
        let e = Error::invalid("beta", 1e308, "must be at most 1e6").to_string();
        assert_eq!(e, "invalid beta = 1e308: must be at most 1e6");
        let e = Error::invalid("k", u64::MAX, "too many").to_string();
        assert_eq!(e, "invalid k = 18446744073709551615: too many");
        let e = Error::invalid("name", "a rather long name that is not a number at all", "bad").to_string();
        assert!(e.contains("a rather long name that is not a number at all"), "{e}");
    }
}
