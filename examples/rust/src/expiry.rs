//! Reading a record's expiry exactly as the kit does (SPEC BK-15, BK-16).
//!
//! A backend reads one thing of the bytes it stores: the top-level `expiresAt`, an RFC 3339
//! UTC timestamp such as `2027-01-15T08:00:00.000Z` (1 to 6 fraction digits, or none). A
//! record is expired when the clock is *strictly* past it. A record whose expiry cannot be
//! read (not UTF-8 JSON, not an object, `expiresAt` absent, null, not a string, or not a real
//! instant such as February 30th or 24:00) never expires: a backend must not destroy data it
//! does not understand.
//!
//! Instants are integer POSIX microseconds, so the comparison is exact; the kit writes
//! expiries and moves its clock in whole milliseconds, where this agrees with Python's
//! `now > deadline` on floats. Keep this file as is when you adapt the example: if your
//! engine expires records natively, it must still agree with [`deadline_us`] on every record.

/// The record's `expiresAt` in POSIX microseconds, or `None` if it never expires.
pub fn deadline_us(data: &[u8]) -> Option<i64> {
    let document: serde_json::Value = serde_json::from_slice(data).ok()?;
    parse_timestamp_us(document.as_object()?.get("expiresAt")?.as_str()?)
}

/// Whether a record with this deadline is expired at `now_ms`: strictly past it (BK-15).
pub fn is_expired(deadline_us: Option<i64>, now_ms: i64) -> bool {
    deadline_us.map_or(false, |deadline| i128::from(now_ms) * 1000 > i128::from(deadline))
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` (ASCII digits, a real date of years 1 to 9999, hours
/// 0 to 23, no leap second) to POSIX microseconds; `None` for anything else.
pub fn parse_timestamp_us(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    for (i, &c) in b[..19].iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return None;
        }
    }
    let number = |digits: &[u8]| digits.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
    let (year, month, day) = (number(&b[0..4]), number(&b[5..7]), number(&b[8..10]));
    let (hour, minute, second) = (number(&b[11..13]), number(&b[14..16]), number(&b[17..19]));
    let fraction = &b[19..b.len() - 1];
    let micros = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=6).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
            number(digits) * 10i64.pow(6 - digits.len() as u32)
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year eras (146,097
/// days each) of years that start in March, so the leap day ends each year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp_us("2020-01-01T00:00:00Z"), Some(1_577_836_800_000_000));
        assert_eq!(parse_timestamp_us("2020-02-29T00:00:00.1Z"), Some(1_582_934_400_100_000));
        assert_eq!(parse_timestamp_us("1969-12-31T23:59:59.5Z"), Some(-500_000));
        assert_eq!(parse_timestamp_us("0001-01-01T00:00:00Z"), Some(-62_135_596_800_000_000));
        assert_eq!(parse_timestamp_us("2000-03-01T00:00:00.000001Z"), Some(951_868_800_000_001));
        for bad in [
            "2021-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2020-13-01T00:00:00Z", "2020-01-00T00:00:00Z",
            "2020-01-01T24:00:00Z", "2020-01-01T23:59:60Z", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00.1234567Z",
            "2020-01-01T00:00:00", "2020-01-01 00:00:00Z", "2020-01-01T00:00:00+00:00", "yesterday", "",
        ] {
            assert_eq!(parse_timestamp_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn records() {
        assert_eq!(deadline_us(br#"{"expiresAt":"1970-01-01T00:00:01.000Z"}"#), Some(1_000_000));
        assert_eq!(deadline_us(br#"{"expiresAt":null,"expiresAt":"1970-01-01T00:00:01Z"}"#), Some(1_000_000));
        for never in [&br#"{"expiresAt":12}"#[..], br#"[{"expiresAt":"2000-01-01T00:00:00Z"}]"#,
                      br#"{"task":{"expiresAt":"2000-01-01T00:00:00Z"}}"#, br#"{"expiresAt":null}"#, b"\xff\xfe", b""] {
            assert_eq!(deadline_us(never), None);
        }
        assert!(!is_expired(Some(1_000_000), 1_000) && is_expired(Some(1_000_000), 1_001) && !is_expired(None, i64::MAX));
    }
}
