//! Known future events (a launch, a sale) declared per workload: `[[workload]] events = [{
//! from = "…", to = "…", floor = 40 }]`. While one is active the replica number is at least
//! its floor, whatever the forecast says: the forecast learns from the past and cannot know
//! about a launch next Tuesday.
//!
//! The floor is in **replicas**, not demand units: the people who declare an event (a launch
//! plan, a capacity review) state how many instances they want running, and a replica floor
//! needs no assumption about what one replica serves. It applies from `from − boot_time` to
//! `to` (end exclusive), because replicas ordered at `from` would only serve `boot_time`
//! later: the floor must already be running when the event starts.

use crate::series::de_time;
use serde::{Deserialize, Serialize};

/// One known future event of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Optional name, shown in reasons (`"black-friday"`); default: the event's time range.
    #[serde(default)]
    pub name: Option<String>,
    /// Start, Unix seconds (config: RFC 3339 with any offset, or Unix seconds).
    #[serde(deserialize_with = "de_time")]
    pub from: i64,
    /// End (exclusive), Unix seconds (config: as `from`).
    #[serde(deserialize_with = "de_time")]
    pub to: i64,
    /// Fewest replicas while the event is active.
    pub floor: u32,
}

impl Event {
    /// Whether the floor applies at `now` for a workload whose replicas take `lead` seconds to
    /// serve: from `from − lead` (so they are serving at `from`) until `to`.
    pub fn active(&self, now: i64, lead: i64) -> bool {
        now >= self.from.saturating_sub(lead.max(0)) && now < self.to
    }

    /// How reasons name the event: its name, or its range.
    pub fn label(&self) -> String {
        let range = format!(
            "{}..{}",
            crate::series::format_timestamp(self.from),
            crate::series::format_timestamp(self.to)
        );
        match &self.name {
            Some(n) if !n.trim().is_empty() => format!("'{n}' ({range})"),
            _ => range,
        }
    }

    /// Checks the range and the floor; the error says what is wrong (the caller names the key).
    pub fn validate(&self) -> Result<(), String> {
        if self.to <= self.from {
            return Err(format!(
                "to ({}) must be after from ({})",
                crate::series::format_timestamp(self.to),
                crate::series::format_timestamp(self.from)
            ));
        }
        if self.floor == 0 {
            return Err("floor must be at least 1 replica".into());
        }
        Ok(())
    }
}

/// The active event with the highest floor at `now` (ties: the first declared), if any.
pub fn strongest(events: &[Event], now: i64, lead: i64) -> Option<&Event> {
    events
        .iter()
        .filter(|e| e.active(now, lead))
        .fold(None, |best: Option<&Event>, e| match best {
            Some(b) if b.floor >= e.floor => Some(b),
            _ => Some(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(from: i64, to: i64, floor: u32) -> Event {
        Event {
            name: None,
            from,
            to,
            floor,
        }
    }

    #[test]
    fn active_from_from_minus_lead_until_to_exclusive() {
        let e = ev(1000, 2000, 40);
        assert!(!e.active(879, 120));
        assert!(e.active(880, 120));
        assert!(e.active(1999, 120));
        assert!(!e.active(2000, 120));
        assert!(!e.active(999, 0));
        assert!(e.active(1000, 0));
    }

    #[test]
    fn strongest_picks_the_highest_active_floor() {
        let es = [ev(0, 100, 5), ev(50, 200, 9), ev(500, 600, 99)];
        assert_eq!(strongest(&es, 10, 0).map(|e| e.floor), Some(5));
        assert_eq!(strongest(&es, 60, 0).map(|e| e.floor), Some(9));
        assert_eq!(strongest(&es, 300, 0), None);
        assert_eq!(strongest(&es, 450, 60).map(|e| e.floor), Some(99));
    }

    #[test]
    fn validate_refuses_backwards_ranges_and_zero_floors() {
        assert!(ev(10, 10, 1)
            .validate()
            .unwrap_err()
            .contains("must be after"));
        assert!(ev(10, 5, 1).validate().is_err());
        assert!(ev(0, 5, 0).validate().unwrap_err().contains("floor"));
        assert!(ev(0, 5, 1).validate().is_ok());
    }
}
