//! The one place the hub reads the wall clock, and the one place a moment becomes the site's
//! calendar day. Everything else takes time as an argument.

use chrono::TimeZone;
use hub_core::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

/// The site's calendar day holding `now`, in the site's time zone (`site.timezone`): "today"
/// for expiry dates, the status page, reports and every screen.
pub fn site_date(zone: chrono_tz::Tz, now: Timestamp) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(now.millis())
        .map(|utc| utc.with_timezone(&zone).date_naive())
        .unwrap_or_default()
}

/// The moment the site's day `day` starts (its local midnight, or the first moment after it on
/// a day that skips midnight).
pub fn day_start(zone: chrono_tz::Tz, day: chrono::NaiveDate) -> Timestamp {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    let start = zone
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            // A gap at midnight (a DST change at 00:00): the day starts an hour later.
            zone.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis());
    Timestamp(start)
}

/// The start of the site's day holding `now`.
pub fn site_day_start(zone: chrono_tz::Tz, now: Timestamp) -> Timestamp {
    day_start(zone, site_date(zone, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_day_is_the_sites_not_utcs() {
        // 2026-11-29 20:30 UTC is already the 30th in Shanghai (UTC+8).
        let t = Timestamp(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
                .unwrap()
                .and_hms_opt(20, 30, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis(),
        );
        let shanghai = chrono_tz::Asia::Shanghai;
        assert_eq!(site_date(shanghai, t).to_string(), "2026-11-30");
        assert_eq!(site_date(chrono_tz::UTC, t).to_string(), "2026-11-29");
        // That day started at 16:00 UTC the day before.
        let start = site_day_start(shanghai, t);
        assert_eq!(start.millis(), t.millis() - (4 * 3600 + 30 * 60) * 1000);
    }
}
