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

impl Services {
    /// New users as seen at `now` in `zone`, with `days` days of history (1 to [`MAX_DAYS`]).
    pub async fn new_users(&self, zone: Tz, now: Timestamp, days: u32) -> Result<NewUsers> {
        let days = days.clamp(1, MAX_DAYS);
        let local_now = now.with_timezone(&zone);
        let today = local_now.date_naive();
        let month_start = today.with_day(1).unwrap_or(today);
        let last_month_end = month_start - Duration::days(1);
        let last_month_start = last_month_end.with_day(1).unwrap_or(last_month_end);
        // The same moment one month back; a 31st in a 30-day month falls back to that month's end.
        let same_day_last_month =
            last_month_start.with_day(today.day().min(last_month_end.day())).unwrap_or(last_month_end);
        let same_time_last_month = zone
            .from_local_datetime(&same_day_last_month.and_time(local_now.time()))
            .earliest()
            .map(|t| t.to_utc())
            .unwrap_or(now);
        let first_day = today - Duration::days(i64::from(days) - 1);
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
