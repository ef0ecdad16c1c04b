//! Dates: parsing query values and time bounds, formatting for output.
//! All times are UTC; documents hold milliseconds since the epoch.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a date for queries and `--start/--stop`: epoch seconds
/// (`1393422583`, fractions allowed), or `YYYY/MM/DD`, `YYYY-MM-DD`
/// followed by an optional time `HH:MM[:SS[.mmm]]` (separated by a space
/// or `T`, an optional trailing `Z`), all UTC. Returns milliseconds.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Some((secs * 1000.0).round() as i64);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut dp = date.split(['/', '-']);
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = 0i64;
    if !time.is_empty() {
        let mut tp = time.split(':');
        let h: i64 = tp.next()?.parse().ok()?;
        let mi: i64 = tp.next()?.parse().ok()?;
        let sec: f64 = match tp.next() {
            Some(x) => x.parse().ok()?,
            None => 0.0,
        };
        if tp.next().is_some() || h > 23 || mi > 59 || !(0.0..61.0).contains(&sec) {
            return None;
        }
        ms = h * 3_600_000 + mi * 60_000 + (sec * 1000.0).round() as i64;
    }
    Some(days_from_civil(y, m, d) * 86_400_000 + ms)
}

/// Formats milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date_ms("1393422583"), Some(1_393_422_583_000));
        assert_eq!(
            parse_date_ms("2014/02/26 13:49:43"),
            Some(1_393_422_583_000)
        );
        assert_eq!(
            parse_date_ms("2014-02-26T13:49:43Z"),
            Some(1_393_422_583_000)
        );
        assert_eq!(parse_date_ms("2014-02-26"), Some(1_393_372_800_000));
        assert_eq!(parse_date_ms("2014-13-01"), None);
        assert_eq!(parse_date_ms("yesterday"), None);
        assert_eq!(format_ms(1_393_422_583_830), "2014-02-26 13:49:43.830");
        assert_eq!(format_ms(0), "1970-01-01 00:00:00.000");
    }
}
