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

use serde::{Deserialize, Deserializer, Serialize};

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

/// Parses a point in time given by a user: RFC 3339 with any offset
/// (`2026-12-24T18:00:00Z`) or whole Unix seconds. A number that looks like milliseconds is
/// refused, as the history reader refuses it.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        // 10^11 s is the year ~5138: anything above is milliseconds or finer.
        if secs.unsigned_abs() >= 100_000_000_000 {
            return Err(format!(
                "'{t}' looks like milliseconds since the epoch; give Unix seconds or RFC 3339"
            ));
        }
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .map_err(|e| {
            let shown: String = t.chars().take(80).collect();
            format!("'{shown}' is neither RFC 3339 (2026-12-24T18:00:00Z) nor Unix seconds: {e}")
        })
}

/// Deserialises a time given as an RFC 3339 string or whole Unix seconds, with
/// [`parse_time`]'s message on failure (an untagged enum would only say "no variant matched").
fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a time: RFC 3339 (\"2026-12-24T18:00:00Z\") or whole Unix seconds")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            parse_time(&v.to_string()).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            parse_time(&v.to_string()).map_err(E::custom)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            parse_time(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
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
    fn times_parse_as_rfc3339_or_seconds_and_bad_ones_say_why() {
        assert_eq!(parse_time("2026-12-24T18:00:00Z"), Ok(1_798_135_200));
        assert_eq!(parse_time("2026-12-24T19:00:00+01:00"), Ok(1_798_135_200));
        assert_eq!(parse_time("1798135200"), Ok(1_798_135_200));
        assert!(parse_time("1798135200000")
            .unwrap_err()
            .contains("milliseconds"));
        assert!(parse_time("christmas").unwrap_err().contains("RFC 3339"));
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
