//! New-user counts for the admin dashboard (REMP's users widgets: registrations today, this
//! month, last month to the same day, and new users per day for a bar graph). Days are
//! calendar days in the zone the caller gives.
//!
//! Users carry no index by creation date, so this reads every user once, in id order, page by
//! page; an admin dashboard loads it now and then, never a hot path.

use super::Services;
use crate::domain::{Result, Timestamp};
use crate::store::UserScan;
use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

/// Most days one request may cover: a year and a day of bars.
pub const MAX_DAYS: u32 = 366;
/// Users read per store call while counting.
const SCAN_PAGE: usize = 1000;

/// Counts of users created (deleted users excluded, inactive ones counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsers {
    pub today: u64,
    /// From the first of this month to now.
    pub this_month: u64,
    /// From the first of last month to the same day and time of last month, to compare with.
    pub last_month_to_date: u64,
    /// One entry per day, oldest first, ending today.
    pub per_day: Vec<(NaiveDate, u64)>,
}

/// The calendar windows the counts cover, seen at one moment in one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Windows {
    today: NaiveDate,
    month_start: NaiveDate,
    last_month_start: NaiveDate,
    /// The same day and time one month back; a 31st in a 30-day month falls back to that
    /// month's last day.
    same_time_last_month: Timestamp,
    /// The first day of the per-day series.
    first_day: NaiveDate,
}

impl Windows {
    fn at(zone: Tz, now: Timestamp, days: u32) -> Self {
        let local_now = now.with_timezone(&zone);
        let today = local_now.date_naive();
        let month_start = today.with_day(1).unwrap_or(today);
        let last_month_end = month_start - Duration::days(1);
        let last_month_start = last_month_end.with_day(1).unwrap_or(last_month_end);
        let same_day = last_month_start.with_day(today.day().min(last_month_end.day())).unwrap_or(last_month_end);
        let same_time_last_month = zone
            .from_local_datetime(&same_day.and_time(local_now.time()))
            .earliest()
            .map(|t| t.to_utc())
            .unwrap_or(now);
        let first_day = today - Duration::days(i64::from(days) - 1);
        Windows { today, month_start, last_month_start, same_time_last_month, first_day }
    }
}

impl Services {
    /// New users as seen at `now` in `zone`, with `days` days of history (1 to [`MAX_DAYS`]).
    pub async fn new_users(&self, zone: Tz, now: Timestamp, days: u32) -> Result<NewUsers> {
        let days = days.clamp(1, MAX_DAYS);
        let Windows { today, month_start, last_month_start, same_time_last_month, first_day } =
            Windows::at(zone, now, days);
        let from_day = first_day.min(last_month_start);
        let mut out = NewUsers {
            today: 0,
            this_month: 0,
            last_month_to_date: 0,
            per_day: (0..days).map(|i| (first_day + Duration::days(i64::from(i)), 0)).collect(),
        };
        let mut scan = UserScan { after: None, include_inactive: true, include_deleted: false };
        loop {
            let page = self.store.scan_users(&scan, 0, SCAN_PAGE).await?;
            let Some(last) = page.last() else { break };
            scan.after = Some(last.id);
            for user in &page {
                let day = user.created_at.with_timezone(&zone).date_naive();
                if day < from_day || user.created_at > now {
                    continue;
                }
                if day == today {
                    out.today += 1;
                }
                if day >= month_start {
                    out.this_month += 1;
                } else if day >= last_month_start && user.created_at <= same_time_last_month {
                    out.last_month_to_date += 1;
                }
                if day >= first_day {
                    let index = usize::try_from((day - first_day).num_days()).unwrap_or(usize::MAX);
                    if let Some(slot) = out.per_day.get_mut(index) {
                        slot.1 += 1;
                    }
                }
            }
            if page.len() < SCAN_PAGE {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_31st_compares_with_the_last_day_of_a_shorter_month() {
        let w = Windows::at(chrono_tz::UTC, at("2024-03-31T15:00:00Z"), 7);
        assert_eq!(
            (w.today, w.month_start, w.last_month_start),
            (day("2024-03-31"), day("2024-03-01"), day("2024-02-01"))
        );
        assert_eq!(w.same_time_last_month, at("2024-02-29T15:00:00Z"));
        assert_eq!(w.first_day, day("2024-03-25"));
    }

    #[test]
    fn days_are_calendar_days_in_the_zone_and_january_looks_back_at_december() {
        // 23:30 UTC on 31 December is already 1 January in Bratislava.
        let w = Windows::at(chrono_tz::Europe::Bratislava, at("2025-12-31T23:30:00Z"), 1);
        assert_eq!((w.today, w.month_start, w.first_day), (day("2026-01-01"), day("2026-01-01"), day("2026-01-01")));
        assert_eq!(w.last_month_start, day("2025-12-01"));
        assert_eq!(w.same_time_last_month, at("2025-11-30T23:30:00Z"));
    }
}
