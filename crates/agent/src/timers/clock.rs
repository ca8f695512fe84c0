//! Local wall-clock time for the `current_time` tool, without a time-zone crate: the offset and
//! abbreviation come from the TZif file named by `TZ` (or `/etc/localtime`); UTC when none can
//! be read. Times past the file's last transition use the last transition's type (the POSIX
//! footer rule is not evaluated).

use std::path::PathBuf;

use power_loop_contracts::clock::{CivilDateTime, now_secs};

/// `YYYY-MM-DD HH:MM:SS {TZ abbrev} ({Weekday})` for the epoch-seconds instant `secs`.
pub fn format_current_time(secs: i64) -> String {
    let (offset, abbrev) = local_zone(secs).unwrap_or((0, "UTC".to_owned()));
    let local = CivilDateTime::from_epoch_secs(secs.saturating_add(offset));
    format!("{} {abbrev} ({})", local.date_time(), local.weekday)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC for now (the `time_iso` of round-usage events).
pub(crate) fn utc_iso_now() -> String {
    CivilDateTime::from_epoch_secs(now_secs()).iso8601()
}

fn zone_file() -> Option<PathBuf> {
    match std::env::var("TZ") {
        Ok(tz) => {
            let tz = tz.trim_start_matches(':');
            if tz.is_empty() || tz == "UTC" || tz == "UTC0" {
                return None;
            }
            let p = PathBuf::from(tz);
            if p.is_absolute() {
                Some(p)
            } else {
                Some(PathBuf::from("/usr/share/zoneinfo").join(p))
            }
        }
        Err(_) => Some(PathBuf::from("/etc/localtime")),
    }
}

fn local_zone(secs: i64) -> Option<(i64, String)> {
    let data = std::fs::read(zone_file()?).ok()?;
    parse_tzif(&data, secs)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Offset (seconds east of UTC) and abbreviation in force at `secs`, from TZif bytes.
fn parse_tzif(data: &[u8], secs: i64) -> Option<(i64, String)> {
    if data.get(..4)? != b"TZif" {
        return None;
    }
    let version = *data.get(4)?;
    let counts = |base: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = usize::try_from(be_u32(data, base + 20 + 4 * i)?).ok()?;
        }
        Some(c)
    };
    let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0)?;
    let v1_len = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    let (base, tsize) = if version >= b'2' {
        (44 + v1_len, 8usize)
    } else {
        (0, 4usize)
    };
    let [_, _, _, timecnt, typecnt, charcnt] = counts(base)?;
    let times = base + 44;
    let idx = times + timecnt * tsize;
    let types = idx + timecnt;
    let chars = types + typecnt * 6;
    let mut ty = 0usize;
    for i in 0..timecnt {
        let at = times + i * tsize;
        let t = if tsize == 8 {
            i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
        };
        if t > secs {
            break;
        }
        ty = usize::from(*data.get(idx + i)?);
    }
    let tt = types + ty * 6;
    let off = i64::from(i32::from_be_bytes(data.get(tt..tt + 4)?.try_into().ok()?));
    let ai = chars + usize::from(*data.get(tt + 5)?);
    let rest = data.get(ai..chars + charcnt)?;
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let abbrev = String::from_utf8_lossy(&rest[..end]).into_owned();
    Some((off, abbrev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_and_weekday() {
        // 2026-11-26 00:00:00 UTC is a Thursday.
        let t = CivilDateTime::from_epoch_secs(1_795_651_200);
        assert_eq!(t.date_time(), "2026-11-26 00:00:00");
        assert_eq!(t.weekday.name(), "Thursday");
        let leap = CivilDateTime::from_epoch_secs(11_016 * 86_400 + 3_661);
        assert_eq!(leap.iso8601(), "2000-02-29T01:01:01");
    }

    #[test]
    fn reads_zone_files_when_present() {
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") else {
            return;
        };
        // 2026-01-15 12:00 UTC: CET (+1h); 2026-07-15 12:00 UTC: CEST (+2h).
        assert_eq!(
            parse_tzif(&data, 1_768_478_400),
            Some((3600, "CET".to_owned()))
        );
        assert_eq!(
            parse_tzif(&data, 1_784_116_800),
            Some((7200, "CEST".to_owned()))
        );
        assert_eq!(parse_tzif(b"nope", 0), None);
    }
}
