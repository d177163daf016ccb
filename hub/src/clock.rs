//! The one place the hub reads the wall clock. Everything below it takes time as an argument.

use hub_core::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

/// Local midnight at the start of the day holding `now` (the box's time zone), in ms.
///
/// "Today" on the status page is the warehouse's day, not UTC's. Falls back to UTC midnight
/// if the local offset cannot be determined.
pub fn local_day_start(now: Timestamp) -> Timestamp {
    use chrono::{Local, TimeZone};
    let Some(utc) = chrono::DateTime::from_timestamp_millis(now.millis()) else {
        return now;
    };
    let local = utc.with_timezone(&Local);
    let midnight = local.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    match Local.from_local_datetime(&midnight).earliest() {
        Some(start) => Timestamp(start.timestamp_millis()),
        None => Timestamp(midnight.and_utc().timestamp_millis()),
    }
}

/// The warehouse's calendar day holding `now` (the box's time zone).
pub fn local_date(now: Timestamp) -> chrono::NaiveDate {
    use chrono::Local;
    chrono::DateTime::from_timestamp_millis(now.millis())
        .map(|utc| utc.with_timezone(&Local).date_naive())
        .unwrap_or_default()
}
