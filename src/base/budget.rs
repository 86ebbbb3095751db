//! Sizes checked before any work: a request the machine cannot hold is refused up front, in one
//! line that says how much it needs, instead of aborting in the allocator ("memory allocation of
//! N bytes failed") or overflowing a shape.
//!
//! Every size is computed in `u128`, so no product of user-given sizes can overflow here.

use crate::base::error::{Error, Result};

/// The memory this process may plan to use: Linux's `MemAvailable` from `/proc/meminfo`, or
/// 16 GiB where that cannot be read.
pub fn available_memory() -> u128 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(16 << 30)
}

/// `bytes` in the largest binary unit that keeps the number ≥ 1 (`1.5 GiB`).
pub fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.1} {}", units[unit]) }
}

/// Refuses `what` when it needs more than `limit` bytes.
///
/// # Errors
/// [`Error::TooLarge`] naming `what`, what it needs and the limit.
pub fn ensure_memory_within(what: &str, bytes: u128, limit: u128) -> Result<()> {
    if bytes > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            needs: format!("at least {} of memory", human_bytes(bytes)),
            limit: format!("the {} available", human_bytes(limit)),
        });
    }
    Ok(())
}

/// Refuses `what` when it needs more memory than the machine has available ([`available_memory`]).
///
/// # Errors
/// [`Error::TooLarge`] naming `what`, what it needs and what is available.
pub fn ensure_memory(what: &str, bytes: u128) -> Result<()> {
    ensure_memory_within(what, bytes, available_memory())
}

/// The most random draws one command may ask for: 10¹⁰ (minutes at the toy models' tens of
/// millions of draws per second; more is refused up front, not run silently for hours).
pub const MAX_DRAWS: u128 = 10_000_000_000;

/// Refuses `what` when it asks for more than [`MAX_DRAWS`] draws.
///
/// # Errors
/// [`Error::TooLarge`] naming `what` and the draws it asks for.
pub fn ensure_draws(what: &str, draws: u128) -> Result<()> {
    if draws > MAX_DRAWS {
        return Err(Error::TooLarge {
            what: what.to_string(),
            needs: format!("{draws} random draws"),
            limit: format!("the {MAX_DRAWS} one command may ask for"),
        });
    }
    Ok(())
}

/// The most arithmetic one command may plan: 10¹³ multiply-adds (as `vaelab experiment`
/// estimates them: `vaelab::cli::experiment::Work`). The experiments' defaults are estimated at
/// 2·10¹⁰–1.4·10¹¹; measured on the Xeon the README names (a `cargo build` binary, models
/// trained, not loaded), `rate-distortion` (3.1·10¹⁰) took 2.5 s, `amortised` (2.0·10¹⁰) 7.1 s
/// and `collapses` (1.4·10¹¹) 12.7 s, so the limit is about 15 minutes to an hour of work. More
/// is refused up front ([`ensure_work`]), not run silently for hours.
pub const MAX_WORK: u128 = 10_000_000_000_000;

/// Refuses `what` when its estimated work `madds` (multiply-adds) exceeds [`MAX_WORK`].
///
/// # Errors
/// [`Error::TooLarge`] naming `what` and its estimate.
pub fn ensure_work(what: &str, madds: u128) -> Result<()> {
    if madds > MAX_WORK {
        return Err(Error::TooLarge {
            what: what.to_string(),
            needs: format!("about {:.1e} multiply-adds", madds as f64),
            limit: format!("the {:.0e} one command may ask for", MAX_WORK as f64),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_named_in_binary_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(80_000_000_000), "74.5 GiB");
        assert_eq!(human_bytes(u128::MAX), format!("{:.1} EiB", u128::MAX as f64 / (1u128 << 60) as f64));
    }

    #[test]
    fn requests_beyond_the_limit_are_refused_in_one_line() {
        assert!(ensure_memory_within("x", 1024, 1024).is_ok());
        let e = ensure_memory_within("a VAE with H = 10⁸", 3 << 40, 16 << 30).unwrap_err().to_string();
        assert_eq!(
            e,
            "a VAE with H = 10⁸ needs at least 3.0 TiB of memory, more than the 16.0 GiB available"
        );
        assert!(ensure_draws("bounds", MAX_DRAWS).is_ok());
        let e = ensure_draws("bounds: --samples × --k", MAX_DRAWS + 1).unwrap_err().to_string();
        assert!(e.starts_with("bounds: --samples × --k needs 10000000001 random draws, more than"), "{e}");
        assert!(available_memory() > 0);
    }

    #[test]
    fn work_beyond_the_limit_is_refused_with_its_estimate() {
        assert!(ensure_work("x", MAX_WORK).is_ok());
        let e = ensure_work("experiment collapses: --epochs", 3 * MAX_WORK).unwrap_err().to_string();
        assert_eq!(
            e,
            "experiment collapses: --epochs needs about 3.0e13 multiply-adds, more than the 1e13 one command may ask for"
        );
    }
}
