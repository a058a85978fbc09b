//! Times typed on the command line: a day, a moment (both UTC), or how long ago.

use anyhow::{Context, bail};
use keyhole_client::core::Timestamp;

/// What `--since` and `--until` take, for help texts.
pub(crate) const FORMS: &str = "a day (2026-12-07), a moment in UTC (2026-12-07T18:30:00Z), or how long ago (90s, 30m, 2h, 7d)";

/// Parses `text` as one of [`FORMS`], relative to `now`.
pub(crate) fn parse(text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    let text = text.trim();
    if let Some(ago) = ago_ms(text) {
        return Ok(Timestamp(now.0.saturating_sub(ago?)));
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let mut num = |what: &str| -> anyhow::Result<u64> {
        parts
            .next()
            .with_context(|| format!("{text:?} has no {what}; use {FORMS}"))?
            .parse::<u64>()
            .with_context(|| format!("{text:?}: the {what} is not a number; use {FORMS}"))
    };
    let (year, month, day) = (num("year")?, num("month")?, num("day")?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        bail!("{text:?} is not a date; use {FORMS}");
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let Some(time) = time.strip_suffix('Z') else {
            bail!("{text:?}: give the time in UTC, ending in Z (e.g. 2026-12-07T18:30:00Z)");
        };
        let fields: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&fields.len()) {
            bail!("{text:?}: the time is HH:MM or HH:MM:SS");
        }
        let mut hms = [0u64; 3];
        for (slot, field) in hms.iter_mut().zip(&fields) {
            *slot = field
                .parse()
                .with_context(|| format!("{text:?}: the time is HH:MM or HH:MM:SS"))?;
        }
        if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 {
            bail!("{text:?} is not a time of day");
        }
        secs += hms[0] * 3600 + hms[1] * 60 + hms[2];
    }
    Ok(Timestamp(secs * 1000))
}

/// `90s`, `30m`, `2h`, `7d` in milliseconds; `None` if `text` is not of that form.
fn ago_ms(text: &str) -> Option<anyhow::Result<u64>> {
    let unit = match text.chars().last()? {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .with_context(|| format!("{text:?} is too long ago")),
    )
}

/// Days since 1970-01-01 of a civil date (H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms"), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_moments_and_ago_round_trip_through_the_display_form() {
        let now = Timestamp(1_795_735_205_000);
        assert_eq!(
            parse("2026-11-26", now).unwrap().to_string(),
            "2026-11-26T00:00:00Z"
        );
        assert_eq!(
            parse("2026-11-26T23:20:05Z", now).unwrap(),
            Timestamp(1_795_735_205_000)
        );
        assert_eq!(
            parse("2000-02-29T12:00Z", now).unwrap().to_string(),
            "2000-02-29T12:00:00Z"
        );
        assert_eq!(parse("2h", now).unwrap(), Timestamp(now.0 - 7_200_000));
        assert_eq!(parse("7d", now).unwrap(), Timestamp(now.0 - 7 * 86_400_000));
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-26T25:00Z",
            "2026-11-26T10:00",
            "h",
            "",
        ] {
            assert!(parse(bad, now).is_err(), "{bad}");
        }
    }
}
