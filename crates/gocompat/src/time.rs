//! Go's `time` text forms: reading the layouts go-yaml resolves plain scalars with (the same in
//! go-yaml v2 and v3) and `time.RFC3339`, writing `time.RFC3339` and `time.RFC3339Nano`.

/// A parsed time with its offset (seconds east of UTC), as Go's `time.Time` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: i32,
}

impl Timestamp {
    /// Go's `time.RFC3339Nano` text: fraction without trailing zeros, `Z` for a zero offset.
    pub fn nano(&self) -> String {
        let mut s = self.base();
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push_str(&self.zone());
        s
    }

    /// Go's `time.RFC3339` text (whole seconds).
    pub fn rfc3339(&self) -> String {
        let mut s = self.base();
        s.push_str(&self.zone());
        s
    }

    fn base(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    fn zone(&self) -> String {
        if self.offset == 0 {
            "Z".into()
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let a = self.offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        }
    }

    /// Now, in UTC, whole seconds.
    pub fn now_utc() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// Unix seconds (Go's `Time.Unix`).
    pub fn unix(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset)
    }

    /// A UTC timestamp from Unix seconds.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
            nanos: 0,
            offset: 0,
        }
    }
}

/// go-yaml's `parseTimestamp`: a plain scalar starting with four digits and `-`, read with the
/// first of the layouts `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
/// `2006-1-2 15:4:5.999999999` (UTC) and `2006-1-2` that `time.Parse` accepts.
pub fn parse_yaml_timestamp(s: &str) -> Option<Timestamp> {
    const SHORT: Fields = Fields {
        date_min: 1,
        clock_min: 1,
    };
    let b = s.as_bytes();
    if b.iter().take_while(|c| c.is_ascii_digit()).count() != 4 || b.get(4) != Some(&b'-') {
        return None;
    }
    match b.iter().position(|c| matches!(c, b'T' | b't' | b' ')) {
        None => parse(s, SHORT, None),
        Some(i) if b[i] == b' ' => parse(s, SHORT, Some(Clock::Space)),
        Some(i) => parse(s, SHORT, Some(Clock::Zoned(b[i]))),
    }
}

/// Go's `time.Parse(time.RFC3339, s)`: two-digit fields but the hour, `T`, a zone; a fraction
/// of a second is accepted though the layout has none.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    const FIXED: Fields = Fields {
        date_min: 2,
        clock_min: 2,
    };
    parse(s, FIXED, Some(Clock::Zoned(b'T')))
}

/// How many digits a layout's month, day, minute and second take at the least (Go's `1` vs
/// `01`); the most is always two, and the hour (`15`) always takes one or two.
#[derive(Clone, Copy)]
struct Fields {
    date_min: usize,
    clock_min: usize,
}

/// What follows the date in a layout.
#[derive(Clone, Copy)]
enum Clock {
    /// `<sep>15:4:5` and a `Z07:00` zone.
    Zoned(u8),
    /// ` 15:4:5` with no zone (UTC); a space in a Go layout matches a run of spaces.
    Space,
}

fn parse(s: &str, fields: Fields, clock: Option<Clock>) -> Option<Timestamp> {
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let year = c.num(4, 4)? as i32;
    c.lit(b'-')?;
    let month = c.num(fields.date_min, 2)?;
    c.lit(b'-')?;
    let day = c.num(fields.date_min, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ts = Timestamp {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    let Some(clock) = clock else {
        return c.done().then_some(ts);
    };
    match clock {
        Clock::Zoned(sep) => c.lit(sep)?,
        Clock::Space => {
            c.lit(b' ')?;
            while c.lit(b' ').is_some() {}
        }
    }
    ts.hour = c.num(1, 2)?;
    c.lit(b':')?;
    ts.minute = c.num(fields.clock_min, 2)?;
    c.lit(b':')?;
    ts.second = c.num(fields.clock_min, 2)?;
    if ts.hour > 23 || ts.minute > 59 || ts.second > 59 {
        return None;
    }
    ts.nanos = c.fraction();
    if let Clock::Zoned(_) = clock {
        ts.offset = c.zone()?;
    }
    c.done().then_some(ts)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// `.` or `,` and digits, as nanoseconds (Go reads every digit, keeps the first nine);
    /// zero and nothing consumed when no digit follows the separator.
    fn fraction(&mut self) -> u32 {
        let sep = matches!(self.s.get(self.i), Some(b'.' | b','));
        if !sep || !self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit) {
            return 0;
        }
        self.i += 1;
        let mut nanos = 0;
        for k in 0.. {
            let Some(d) = self.s.get(self.i).filter(|d| d.is_ascii_digit()) else {
                break;
            };
            if k < 9 {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - k);
            }
            self.i += 1;
        }
        nanos
    }

    /// Go's `Z07:00`: `Z`, or a sign and `hh:mm` with hours up to 24 and minutes up to 60.
    fn zone(&mut self) -> Option<i32> {
        if self.lit(b'Z').is_some() {
            return Some(0);
        }
        let neg = match self.s.get(self.i) {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return None,
        };
        self.i += 1;
        let h = self.num(2, 2)?;
        self.lit(b':')?;
        let m = self.num(2, 2)?;
        if h > 24 || m > 60 {
            return None;
        }
        let off = (h * 3600 + m * 60) as i32;
        Some(if neg { -off } else { off })
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}
